import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { applyRetention } from "../../src/fleet/upkeep/retention.js";
import { recordEvent } from "../../src/notify/outbox.js";
import { addQr, cleanupOperators, makeInstance, makeOperator, makeSession } from "../notify/fixtures.js";
import { newPrefix, testFleet } from "../support/fleet.js";

let fleet: ReturnType<typeof testFleet>;
const operators: string[] = [];
const DAY = 86_400_000;

beforeAll(() => {
  fleet = testFleet({ QRFLEET_REDIS_PREFIX: newPrefix(), QRFLEET_QR_RETENTION_DAYS: "30", QRFLEET_AUDIT_RETENTION_DAYS: "365" });
});
afterAll(async () => {
  await cleanupOperators(fleet.db, operators);
  await fleet?.close();
});

/** A session that ended `ageDays` ago (or is still running), with a QR code of that age and an outcome event delivered to a webhook. */
async function history(instanceId: string, ageDays: number, running = false) {
  const at = new Date(Date.now() - ageDays * DAY);
  const session = await makeSession(fleet.db, instanceId, { status: running ? "running" : "timed_out" });
  if (!running) await fleet.db.qrSession.update({ where: { id: session.id }, data: { endedAt: at } });
  await addQr(fleet.db, session.id, 1, 1, at);
  const [delivery] = await fleet.db.$transaction((tx) =>
    recordEvent(tx, { type: "session.timed_out", instanceId, sessionId: session.id, attempt: 1, data: {} }, { escalateAfter: 2 }),
  );
  return { session: session.id, delivery: delivery! };
}

describe("retention", () => {
  it("deletes QR images past their days, ended sessions and episodes with their trail past theirs, and never an open one", async () => {
    const { instance } = await makeInstance(fleet.db);
    const op = await makeOperator(fleet.db, instance.id, { webhook: "https://hooks.example.com/retention" });
    operators.push(op.operator.id);
    const recent = await history(instance.id, 10);
    const imageOld = await history(instance.id, 40);
    const ancient = await history(instance.id, 400);
    const stillOpen = await history(instance.id, 400, true);
    const longAgo = new Date(Date.now() - 400 * DAY);
    const episode = (endedAt: Date | null) =>
      fleet.db.stateEpisode.create({ data: { instanceId: instance.id, state: "blocked", since: longAgo, seenAt: longAgo, alertedAt: longAgo, endedAt } });
    const endedEpisode = await episode(longAgo);
    const openEpisode = await episode(null);

    const result = await applyRetention(fleet);
    expect(result.sessions).toBeGreaterThanOrEqual(1);
    expect(result.qrCodes).toBeGreaterThanOrEqual(3);

    const sessions = new Set((await fleet.db.qrSession.findMany({ where: { instanceId: instance.id } })).map((s) => s.id));
    expect([recent, imageOld, ancient, stillOpen].map((h) => sessions.has(h.session))).toEqual([true, true, false, true]);
    const codes = await fleet.db.qrCode.findMany({ where: { session: { instanceId: instance.id } } });
    expect(codes.map((c) => c.sessionId)).toEqual([recent.session]);
    const deliveries = new Set((await fleet.db.delivery.findMany({ where: { event: { instanceId: instance.id } } })).map((d) => d.id));
    expect([recent, imageOld, ancient, stillOpen].map((h) => deliveries.has(h.delivery))).toEqual([true, true, false, true]);
    const episodes = new Set((await fleet.db.stateEpisode.findMany({ where: { instanceId: instance.id } })).map((e) => e.id));
    expect([endedEpisode, openEpisode].map((e) => episodes.has(e.id))).toEqual([false, true]); // an open alert stays, however old
    expect(await applyRetention(fleet)).toEqual({ qrCodes: 0, sessions: 0, events: 0, episodes: 0 });
  });
});
