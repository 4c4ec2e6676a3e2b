import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { addInstance } from "../../src/fleet/instances/instances.js";
import { addChannel, addOperator, assign, getOperator, setChannelMode } from "../../src/fleet/operators/operators.js";
import { listDeliveries } from "../../src/fleet/operators/deliveries.js";
import { sendDelivery } from "../../src/notify/deliver.js";
import { cutDigests } from "../../src/notify/digests.js";
import { recordEvent } from "../../src/notify/outbox.js";
import { newIdInstance, newToken, testFleet } from "../support/fleet.js";
import { deps, noMailer } from "./fixtures.js";

/**
 * Who gets a digest instead of one message per event, and how a digest is cut: the held rows of a
 * channel go into exactly one digest, once its oldest has waited the window and the interval since
 * the last one has passed, whoever cuts and however many cut at once.
 */

let ctx: ReturnType<typeof testFleet>;
const WINDOW_MS = 400;
const INTERVAL_MS = 1500;
const timing = { windowMs: WINDOW_MS, intervalMs: INTERVAL_MS };

beforeAll(() => {
  ctx = testFleet({});
});
afterAll(async () => {
  await ctx?.close();
});

const newInstance = () => addInstance(ctx, { apiUrl: "http://127.0.0.1:9", idInstance: newIdInstance(), token: newToken() });

/** An alert about the instance: what every kind of channel hears of, at every tier. */
function alert(instanceId: string): Promise<string[]> {
  return ctx.db.$transaction((tx) =>
    recordEvent(tx, { type: "instance.alert", instanceId, sessionId: null, attempt: null, everyTier: true, data: { state: "blocked" } }, { escalateAfter: 1 }),
  );
}

const statusesOf = async (channelId: string) =>
  (await ctx.db.delivery.findMany({ where: { channelId, event: { type: { not: "digest" } } }, select: { status: true } })).map((d) => d.status).sort();

describe("digest mode", () => {
  let fleetEmail: string;
  let fleetHook: string;
  let deskEmail: string;
  let unassigned: string[];

  beforeAll(async () => {
    const fleetOp = await addOperator(ctx, { name: "fleet", email: "fleet@example.test", webhook: "https://hooks.example.test/fleet" });
    fleetEmail = fleetOp.operator.channels.find((c) => c.kind === "email")!.id;
    fleetHook = fleetOp.operator.channels.find((c) => c.kind === "webhook")!.id;
    const desk = await addOperator(ctx, { name: "desk", email: "desk@example.test" });
    deskEmail = desk.operator.channels[0]!.id;
    const own = await newInstance();
    await assign(ctx, own.id, "desk");
    unassigned = [(await newInstance()).id, (await newInstance()).id, (await newInstance()).id];
    await alert(own.id);
  });

  it("starts a fleet-wide operator's email in digest and everything else immediate, as the operator's page says", async () => {
    const fleet = await getOperator(ctx, "fleet");
    expect(fleet.channels.map((c) => [c.kind, c.mode, c.modeSet])).toEqual([["email", "digest", false], ["webhook", "immediate", false]]);
    const desk = await getOperator(ctx, "desk");
    expect(desk.channels.map((c) => [c.kind, c.mode, c.modeSet])).toEqual([["email", "immediate", false]]);

    const sendNow = (await Promise.all(unassigned.map(alert))).flat();
    // The webhook is sent now; the fleet-wide email waits for its digest.
    expect(sendNow).toHaveLength(3);
    expect(await statusesOf(fleetEmail)).toEqual(["held", "held", "held"]);
    expect(await statusesOf(fleetHook)).toEqual(["pending", "pending", "pending"]);
    expect(await statusesOf(deskEmail)).toEqual(["pending"]);
    const held = await listDeliveries(ctx, { status: "held" });
    expect(held.map((d) => d.address)).toEqual(["fleet@example.test", "fleet@example.test", "fleet@example.test"]);
  });

  it("cuts one digest per channel once the window has passed, not before, and not again within the interval", async () => {
    const early = await cutDigests(ctx.sql, { windowMs: 60_000, intervalMs: INTERVAL_MS });
    expect(early).toEqual([]);
    await sleep(WINDOW_MS);
    const cut = await cutDigests(ctx.sql, timing);
    expect(cut).toEqual([{ id: expect.any(String), channelId: fleetEmail }]);
    const digest = await ctx.db.delivery.findUniqueOrThrow({ where: { id: cut[0]!.id }, include: { event: true } });
    expect(digest).toMatchObject({ status: "pending", channelId: fleetEmail, event: { type: "digest", instanceId: null } });
    const taken = await ctx.db.delivery.findMany({ where: { digestId: digest.id }, include: { event: true } });
    expect(taken.map((d) => d.event.instanceId).sort()).toEqual([...unassigned].sort());
    expect(await statusesOf(fleetEmail)).toEqual(["digested", "digested", "digested"]);

    // A new event waits for the interval since this digest, however long it has been held.
    await alert(unassigned[0]!);
    await sleep(WINDOW_MS + 100);
    expect(await cutDigests(ctx.sql, timing)).toEqual([]);
    await sleep(INTERVAL_MS - WINDOW_MS);
    const next = await cutDigests(ctx.sql, timing);
    expect(next).toHaveLength(1);
    expect(await ctx.db.delivery.count({ where: { digestId: next[0]!.id } })).toBe(1);
  });

  it("puts each held row into exactly one digest when several daemons cut at once", async () => {
    await ctx.db.channel.update({ where: { id: fleetEmail }, data: { lastDigestAt: null } });
    await Promise.all(Array.from({ length: 20 }, () => alert(unassigned[1]!)));
    await sleep(WINDOW_MS);
    const cuts = (await Promise.all(Array.from({ length: 6 }, () => cutDigests(ctx.sql, timing)))).flat();
    expect(cuts).toHaveLength(1);
    expect(await ctx.db.delivery.count({ where: { digestId: cuts[0]!.id } })).toBe(20);
    expect(await ctx.db.delivery.count({ where: { channelId: fleetEmail, status: "held" } })).toBe(0);
  });

  it("follows the mode an admin sets, and the default again when asked", async () => {
    const [first] = unassigned;
    await setChannelMode(ctx, fleetEmail, "immediate");
    await setChannelMode(ctx, deskEmail, "digest");
    await setChannelMode(ctx, fleetHook, "digest");
    const before = new Date();
    await alert(first!);
    const own = (await ctx.db.assignment.findFirstOrThrow({ where: { operator: { name: "desk" } } })).instanceId;
    await alert(own);
    const since = (channelId: string) =>
      ctx.db.delivery.findMany({ where: { channelId, createdAt: { gte: before } }, select: { status: true } }).then((r) => r.map((d) => d.status));
    expect(await since(fleetEmail)).toEqual(["pending"]);
    expect(await since(fleetHook)).toEqual(["held"]);
    expect(await since(deskEmail)).toEqual(["held"]);

    const back = await setChannelMode(ctx, fleetEmail, "default");
    expect([back.mode, back.modeSet]).toEqual(["digest", false]);
    const set = await getOperator(ctx, "desk");
    expect([set.channels[0]!.mode, set.channels[0]!.modeSet]).toEqual(["digest", true]);
  });

  it("refuses a mode it does not know and a channel that does not exist, changing nothing", async () => {
    await expect(setChannelMode(ctx, fleetEmail, "weekly")).rejects.toThrow("mode: must be one of immediate, digest, default");
    await expect(setChannelMode(ctx, "7b0c1f0e-1111-4111-8111-111111111111", "digest")).rejects.toThrow('no channel "7b0c1f0e-1111-4111-8111-111111111111"');
    await expect(setChannelMode(ctx, "' OR 1=1 --", "digest")).rejects.toThrow("no channel");
    expect((await getOperator(ctx, "fleet")).channels.find((c) => c.id === fleetEmail)!.modeSet).toBe(false);
  });

  it("never sends an interrupted digest email again, and names what it carried in the next digest", async () => {
    await ctx.db.channel.update({ where: { id: fleetEmail }, data: { lastDigestAt: null } });
    await Promise.all(unassigned.map(alert));
    await sleep(WINDOW_MS);
    const cut = (await cutDigests(ctx.sql, timing)).find((c) => c.channelId === fleetEmail);
    const carried = (await ctx.db.delivery.findMany({ where: { digestId: cut!.id }, select: { id: true } })).map((d) => d.id).sort();
    expect(carried).toHaveLength(3);
    // A daemon handed it to SMTP and died before the answer was written.
    await ctx.db.delivery.update({ where: { id: cut!.id }, data: { handedOffAt: new Date(Date.now() - 600_000) } });

    expect(await sendDelivery(deps(ctx.db, noMailer, { leaseMs: 1000 }), cut!.id)).toEqual({ status: "failed" });
    expect(await ctx.db.delivery.findUniqueOrThrow({ where: { id: cut!.id } })).toMatchObject({ status: "failed", lastError: expect.stringContaining("interrupted") });
    expect(await ctx.db.delivery.count({ where: { id: { in: carried }, status: "held", digestId: null } })).toBe(3);

    await ctx.db.channel.update({ where: { id: fleetEmail }, data: { lastDigestAt: null } });
    const next = (await cutDigests(ctx.sql, timing)).find((c) => c.channelId === fleetEmail);
    expect((await ctx.db.delivery.findMany({ where: { digestId: next!.id }, select: { id: true } })).map((d) => d.id).sort()).toEqual(carried);
  });

  it("gives a channel added later the default of its operator's place", async () => {
    const added = await addChannel(ctx, "fleet", { kind: "email", address: "night@example.test" });
    expect([added.channel.mode, added.channel.modeSet]).toEqual(["digest", false]);
    const deskAdded = await addChannel(ctx, "desk", { kind: "email", address: "desk2@example.test" });
    expect(deskAdded.channel.mode).toBe("immediate");
  });
});
