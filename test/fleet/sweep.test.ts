import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { updateInstance } from "../../src/fleet/instances/instances.js";
import { startSimulator, type Script, type Simulator } from "../../src/simulator/index.js";
import { reauthSchedulerId } from "../../src/queues.js";
import { reauthInstance, sweepFleet } from "../../src/fleet/triggers/sweep.js";
import { newPrefix, simulatedInstance, testFleet } from "../support/fleet.js";

let sim: Simulator;
let fleet: ReturnType<typeof testFleet>;

beforeAll(async () => {
  sim = await startSimulator({ defaults: { rotationMs: 200, scanWindowMs: 60_000 } });
  fleet = testFleet({ QRFLEET_REDIS_PREFIX: newPrefix(), QRFLEET_SWEEP_CONCURRENCY: "4" });
});
afterAll(async () => {
  await fleet?.close();
  await sim?.close();
});

const instanceWith = (script: Partial<Script>, extra: Record<string, unknown> = {}) =>
  simulatedInstance(fleet, sim, script, extra);

describe("the fleet sweep", () => {
  it("records every enabled instance's state and starts one session per logged-out instance", async () => {
    const loggedOut = await Promise.all([1, 2, 3].map(() => instanceWith({ fate: "never" })));
    const linked = await instanceWith({ fate: "authorized" });
    const refused = await instanceWith({ fate: "wrong_token" });
    const disabled = await instanceWith({ fate: "never" }, { enabled: false });

    const first = await sweepFleet(fleet);
    expect(first).toMatchObject({ checked: 5, notAuthorized: 3, enqueued: 3, errors: 1 });
    const again = await sweepFleet(fleet);
    expect(again).toMatchObject({ checked: 1, notAuthorized: 0, enqueued: 0 }); // only the linked one: the others have a session open, or need attention

    const rows = await fleet.db.instance.findMany({ include: { sessions: true } });
    const byId = new Map(rows.map((r) => [r.id, r]));
    for (const i of loggedOut) {
      const row = byId.get(i.id)!;
      expect(row.lastState).toBe("notAuthorized");
      expect(row.unlinkedSince).not.toBeNull();
      expect(row.sessions.map((s) => [s.trigger, s.status])).toEqual([["sweep", "queued"]]);
    }
    expect(byId.get(linked.id)).toMatchObject({ lastState: "authorized", unlinkedSince: null, sessions: [] });
    expect(byId.get(refused.id)).toMatchObject({ attention: "invalid_token", sessions: [] });
    expect(byId.get(disabled.id)).toMatchObject({ lastState: null, sessions: [] });

    await fleet.db.qrSession.updateMany({ where: { instanceId: { in: loggedOut.map((i) => i.id) } }, data: { status: "timed_out" } });
    const third = await sweepFleet(fleet);
    expect(third).toMatchObject({ checked: 4, notAuthorized: 3, enqueued: 3 }); // an instance that needs attention is left alone until fixed
  });

  it("reaches every instance page after page, though each page's sessions leave it out of the next query", async () => {
    await fleet.db.qrSession.updateMany({ where: { status: { in: ["queued", "running"] } }, data: { status: "cancelled" } });
    const many = await Promise.all(Array.from({ length: 7 }, () => instanceWith({ fate: "never" })));
    await sweepFleet(fleet, undefined, { pageSize: 2 });
    const open = await fleet.db.qrSession.findMany({ where: { instanceId: { in: many.map((i) => i.id) }, status: "queued" } });
    expect(open.map((s) => s.instanceId).sort()).toEqual(many.map((i) => i.id).sort());
  });

  it("never overwrites a state the instance learnt after the poll (a provider webhook meanwhile)", async () => {
    const inst = await instanceWith({ fate: "never" });
    const later = new Date(Date.now() + 60_000);
    await fleet.db.instance.update({ where: { id: inst.id }, data: { lastState: "authorized", lastStateAt: later } });
    const result = await sweepFleet(fleet);
    expect(result.errors).toBe(0);
    const row = await fleet.db.instance.findUniqueOrThrow({ where: { id: inst.id }, include: { sessions: true } });
    expect(row).toMatchObject({ lastState: "authorized", lastStateAt: later, sessions: [] });
  });

  it("leaves an instance the provider refused alone on its own schedule too, until its token is set again", async () => {
    const refused = await instanceWith({ fate: "wrong_token" }, { cron: "0 */6 * * *" });
    expect(await reauthInstance(fleet, refused.id)).toMatchObject({ checked: 1, errors: 1 });
    expect((await fleet.db.instance.findUniqueOrThrow({ where: { id: refused.id } })).attention).toBe("invalid_token");
    expect(await reauthInstance(fleet, refused.id)).toBe("needs attention");
    await updateInstance(fleet, refused.id, { token: refused.token });
    expect(await reauthInstance(fleet, refused.id)).toMatchObject({ checked: 1 });
  });

  it("polls with the token set last: a token changed between two sweeps is the one the next sends", async () => {
    const inst = await instanceWith({ fate: "authorized" }, { cron: "0 */6 * * *" });
    expect(await reauthInstance(fleet, inst.id)).toMatchObject({ checked: 1, errors: 0 });
    await updateInstance(fleet, inst.id, { token: "0".repeat(50) });
    expect(await reauthInstance(fleet, inst.id)).toMatchObject({ checked: 1, errors: 1 });
    expect((await fleet.db.instance.findUniqueOrThrow({ where: { id: inst.id } })).attention).toBe("invalid_token");
    await updateInstance(fleet, inst.id, { token: inst.token });
    expect(await reauthInstance(fleet, inst.id)).toMatchObject({ checked: 1, errors: 0 });
  });

  it("counts a token no key opens as an error without calling the provider, and polls again once it is set", async () => {
    const inst = await instanceWith({ fate: "authorized" }, { cron: "0 */6 * * *" });
    await fleet.db.instance.update({ where: { id: inst.id }, data: { tokenCiphertext: Buffer.from("sealed under no key of the ring") } });
    expect(await reauthInstance(fleet, inst.id)).toMatchObject({ checked: 1, errors: 1 });
    expect((await fleet.db.instance.findUniqueOrThrow({ where: { id: inst.id } })).lastState).toBeNull();
    await updateInstance(fleet, inst.id, { token: inst.token });
    expect(await reauthInstance(fleet, inst.id)).toMatchObject({ checked: 1, errors: 0 });
    expect((await fleet.db.instance.findUniqueOrThrow({ where: { id: inst.id } })).lastState).toBe("authorized");
  });

  it("gives an instance with a cron its own job scheduler, and removes it with the cron", async () => {
    const inst = await instanceWith({ fate: "never" }, { cron: "0 */6 * * *" });
    const scheduler = await fleet.queues.sweep.getJobScheduler(reauthSchedulerId(inst.id));
    expect(scheduler).toMatchObject({ pattern: "0 */6 * * *" });
    await updateInstance(fleet, inst.id, { cron: null });
    expect(await fleet.queues.sweep.getJobScheduler(reauthSchedulerId(inst.id))).toBeFalsy();
  });
});
