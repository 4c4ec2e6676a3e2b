import { afterAll, afterEach, describe, expect, it } from "vitest";
import type { Db } from "../../src/db.js";
import { recordEvent } from "../../src/notify/outbox.js";
import type { InstanceEventType } from "../../src/notify/types.js";
import { testDb } from "../support/db.js";
import { cleanupOperators, makeInstance, makeOperator, makeSession, record, uid } from "./fixtures.js";

const db = testDb();
const operators: string[] = [];
afterEach(() => cleanupOperators(db, operators));
afterAll(() => db.$disconnect());

async function operator(instanceId: string | null, tier = 1) {
  const added = await makeOperator(db, instanceId, { email: `${uid("o")}@example.com`, webhook: "https://hooks.example.com/q" }, tier);
  operators.push(added.operator.id);
  return added.operator;
}

/** Channel ids that got a delivery for the event ids returned. */
async function recipients(database: Db, deliveryIds: string[]): Promise<string[]> {
  const rows = await database.delivery.findMany({ where: { id: { in: deliveryIds } }, select: { channelId: true } });
  return rows.map((r) => r.channelId).sort();
}

async function setup() {
  const { instance } = await makeInstance(db);
  const session = await makeSession(db, instance.id);
  return { instance, session };
}

const channelIds = (...ops: Array<{ channels: Array<{ id: string }> }>) => ops.flatMap((o) => o.channels.map((c) => c.id)).sort();
const emailOf = (o: { channels: Array<{ id: string; kind: string }> }) => o.channels.find((c) => c.kind === "email")!.id;
const webhookOf = (o: { channels: Array<{ id: string; kind: string }> }) => o.channels.find((c) => c.kind === "webhook")!.id;

describe("outbox routing", () => {
  it("sends to the operators assigned to the instance, not to others", async () => {
    const { instance, session } = await setup();
    const mine = await operator(instance.id);
    const other = await setup();
    const theirs = await operator(other.instance.id);
    const ids = await record(db, { type: "session.wrong_number", instanceId: instance.id, sessionId: session.id, attempt: 1, data: {} });
    expect(await recipients(db, ids)).toEqual(channelIds(mine));
    expect(await recipients(db, ids)).not.toContain(emailOf(theirs));
  });

  it("falls back to fleet-wide defaults (operators with no assignment) only for unassigned instances", async () => {
    const { instance, session } = await setup();
    const fallback = await operator(null);
    const busy = await operator((await setup()).instance.id);
    const ids = await record(db, { type: "session.wrong_number", instanceId: instance.id, sessionId: session.id, attempt: 1, data: {} });
    const got = await recipients(db, ids);
    // To send now: the fleet-wide webhook; its email is held for a digest (notify/digests.ts).
    expect(got).toEqual([webhookOf(fallback)]);
    expect(await db.delivery.findMany({ where: { channelId: emailOf(fallback) }, select: { status: true } })).toEqual([{ status: "held" }]);
    expect(got).not.toContain(emailOf(busy));

    const assigned = await setup();
    const owner = await operator(assigned.instance.id);
    const ids2 = await record(db, { type: "session.wrong_number", instanceId: assigned.instance.id, sessionId: assigned.session.id, attempt: 1, data: {} });
    expect(await recipients(db, ids2)).toEqual(channelIds(owner));
  });

  it("adds tier N only after (N-1) x escalateAfter attempts", async () => {
    const { instance, session } = await setup();
    const t1 = await operator(instance.id, 1);
    const t2 = await operator(instance.id, 2);
    const t3 = await operator(instance.id, 3);
    const at = async (attempt: number) =>
      recipients(
        db,
        await record(db, { type: "qr.updated", instanceId: instance.id, sessionId: session.id, attempt, qrSequence: attempt, firstOfAttempt: true, data: {} }, 2),
      );
    expect(await at(1)).toEqual(channelIds(t1));
    expect(await at(2)).toEqual(channelIds(t1));
    expect(await at(3)).toEqual(channelIds(t1, t2));
    expect(await at(4)).toEqual(channelIds(t1, t2));
    expect(await at(5)).toEqual(channelIds(t1, t2, t3));
  });

  it("emails only the first QR of an attempt and the endings that need a human; webhooks get everything", async () => {
    const { instance, session } = await setup();
    const op = await operator(instance.id);
    const base = { instanceId: instance.id, sessionId: session.id, attempt: 1, data: {} };
    const kinds = async (type: InstanceEventType, extra: object = {}) => {
      const got = await recipients(db, await record(db, { ...base, type, ...extra }));
      return [got.includes(emailOf(op)) ? "email" : null, got.includes(webhookOf(op)) ? "webhook" : null].filter(Boolean);
    };
    expect(await kinds("qr.updated", { qrSequence: 1, firstOfAttempt: true })).toEqual(["email", "webhook"]);
    expect(await kinds("qr.updated", { qrSequence: 2, firstOfAttempt: false })).toEqual(["webhook"]);
    expect(await kinds("qr.updated", { qrSequence: 3 })).toEqual(["webhook"]);
    expect(await kinds("session.timed_out")).toEqual(["email", "webhook"]);
    expect(await kinds("session.timed_out", { final: false })).toEqual(["webhook"]);
    expect(await kinds("session.failed", { data: { errorCode: "invalid_token" } })).toEqual(["email", "webhook"]);
    expect(await kinds("session.failed", { final: false })).toEqual(["webhook"]);
    expect(await kinds("session.wrong_number")).toEqual(["email", "webhook"]);
    expect(await kinds("session.authorized")).toEqual(["webhook"]);
    expect(await kinds("session.already_logged")).toEqual(["webhook"]);
  });

  it("skips disabled channels and stores the event with its payload", async () => {
    const { instance, session } = await setup();
    const op = await operator(instance.id);
    await db.channel.update({ where: { id: emailOf(op) }, data: { enabled: false } });
    const ids = await record(db, {
      type: "qr.updated", instanceId: instance.id, sessionId: session.id, attempt: 1, qrSequence: 1, firstOfAttempt: true,
      data: { sequence: 1, receivedAt: new Date(0) },
    });
    expect(await recipients(db, ids)).toEqual([webhookOf(op)]);
    const d = await db.delivery.findUniqueOrThrow({ where: { id: ids[0]! }, include: { event: true } });
    expect(d).toMatchObject({ status: "pending", tries: 0 });
    expect(d.event).toMatchObject({ type: "qr.updated", qrSequence: 1, attempt: 1 });
    expect(d.event.payload).toEqual({ sequence: 1, receivedAt: new Date(0).toISOString(), firstOfAttempt: true });
  });

  it("writes nothing when the surrounding transaction rolls back", async () => {
    const { instance, session } = await setup();
    await operator(instance.id);
    const before = await db.event.count({ where: { sessionId: session.id } });
    await expect(
      db.$transaction(async (tx) => {
        await recordEvent(tx, { type: "session.authorized", instanceId: instance.id, sessionId: session.id, attempt: 1, data: {} }, { escalateAfter: 2 });
        throw new Error("rollback");
      }),
    ).rejects.toThrow("rollback");
    expect(await db.event.count({ where: { sessionId: session.id } })).toBe(before);
  });
});
