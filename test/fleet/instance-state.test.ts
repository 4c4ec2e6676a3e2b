import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { addInstance } from "../../src/fleet/instances/instances.js";
import { recordInstanceStates } from "../../src/fleet/instances/instance-state.js";
import { newIdInstance, newPrefix, newToken, testFleet } from "../support/fleet.js";

let fleet: ReturnType<typeof testFleet>;

beforeAll(() => {
  fleet = testFleet({ QRFLEET_REDIS_PREFIX: newPrefix() });
});
afterAll(async () => fleet?.close());

const newInstance = () => addInstance(fleet, { apiUrl: "http://127.0.0.1:9", idInstance: newIdInstance(), token: newToken() });
const row = (id: string) => fleet.db.instance.findUniqueOrThrow({ where: { id } });
const at = (ms: number) => new Date(Date.UTC(2026, 0, 1) + ms);

describe("an instance's provider state", () => {
  it("keeps unlinkedSince from the first logged-out report until a linked one, and emits only changes", async () => {
    const inst = await newInstance();
    const seen: string[] = [];
    const listener = (s: { instanceId: string; state: string }) => void (s.instanceId === inst.id && seen.push(s.state));
    fleet.events.on("instance:state", listener);
    try {
      const report = async (state: "notAuthorized" | "authorized", ms: number) => {
        const current = await row(inst.id);
        return recordInstanceStates(fleet, [{ instance: current, state, at: at(ms) }]);
      };
      await report("notAuthorized", 1_000);
      await report("notAuthorized", 60_000);
      expect(await row(inst.id)).toMatchObject({ lastState: "notAuthorized", lastStateAt: at(60_000), unlinkedSince: at(1_000) });
      await report("authorized", 120_000);
      expect(await row(inst.id)).toMatchObject({ lastState: "authorized", unlinkedSince: null });
      expect(seen).toEqual(["notAuthorized", "authorized"]);
    } finally {
      fleet.events.off("instance:state", listener);
    }
  });

  it("never lets an older report overwrite a newer one", async () => {
    const inst = await newInstance();
    await recordInstanceStates(fleet, [{ instance: inst, state: "authorized", at: at(10_500) }]);
    // A poll that started before the webhook came in, and a provider timestamp of the same second.
    const written = await recordInstanceStates(fleet, [{ instance: inst, state: "notAuthorized", at: at(9_000) }]);
    expect(written.has(inst.id)).toBe(false);
    expect(await row(inst.id)).toMatchObject({ lastState: "authorized", lastStateAt: at(10_500) });
    const sameSecond = await recordInstanceStates(fleet, [{ instance: inst, state: "notAuthorized", at: at(10_000), precisionMs: 1_000 }]);
    expect(sameSecond.has(inst.id)).toBe(true);
    expect(await row(inst.id)).toMatchObject({ lastState: "notAuthorized", unlinkedSince: at(10_000) });
    // A late webhook of the second before: older, though its whole-second timestamp is within 1 s of the record.
    const secondBefore = await recordInstanceStates(fleet, [{ instance: inst, state: "authorized", at: at(9_000), precisionMs: 1_000 }]);
    expect(secondBefore.has(inst.id)).toBe(false);
    expect(await row(inst.id)).toMatchObject({ lastState: "notAuthorized", lastStateAt: at(10_000) });
  });

  it("records the same instances from two daemons at once, in opposite orders, without a deadlock", async () => {
    const other = testFleet({ QRFLEET_REDIS_PREFIX: fleet.config.QRFLEET_REDIS_PREFIX });
    try {
      const instances = await Promise.all(Array.from({ length: 40 }, newInstance));
      const ids = instances.map((i) => i.id);
      for (let round = 0; round < 6; round++) {
        const state = round % 2 === 0 ? ("blocked" as const) : ("notAuthorized" as const);
        const reports = instances.map((instance) => ({ instance, state, at: at(200_000 + round * 1_000) }));
        const reversed = [...reports].reverse();
        await Promise.all([
          recordInstanceStates(fleet, reports), recordInstanceStates(other, reversed),
          recordInstanceStates(fleet, reversed), recordInstanceStates(other, reports),
        ]);
      }
      const rows = await fleet.db.instance.findMany({ where: { id: { in: ids } } });
      expect(rows.map((r) => r.lastState)).toEqual(ids.map(() => "notAuthorized"));
      // Three stretches of blocked, each one episode, each ended by the logged-out report after it.
      const episodes = await fleet.db.stateEpisode.groupBy({ by: ["instanceId"], where: { instanceId: { in: ids } }, _count: { _all: true } });
      expect(episodes.map((e) => e._count._all)).toEqual(ids.map(() => 3));
      expect(await fleet.db.stateEpisode.count({ where: { instanceId: { in: ids }, endedAt: null } })).toBe(0);
    } finally {
      await other.close();
    }
  });
});
