import { subscribe, unsubscribe } from "node:diagnostics_channel";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PHASES, phasesOf, slicePlan, slotAt, sweepSlot } from "../../src/fleet/triggers/sweep-slices.js";
import { startSimulator, type Simulator } from "../../src/simulator/index.js";
import { simulatedInstance, testFleet, waitFor } from "../support/fleet.js";

/**
 * How one slot spends its calls: at each instance's phase, never before, and never faster than
 * twice the slot's average pace, so a slot taken late catches up over a few ticks instead of
 * opening a connection for every call it owes at once. The calls are timed as they leave (undici's
 * `undici:request:create`): the simulator shares this process, so on a busy machine its own
 * timestamps bunch calls that went out spread.
 */

const INSTANCES = 100;
const env = { QRFLEET_SWEEP_INTERVAL_MS: "3000", QRFLEET_SWEEP_SLICES: "6", QRFLEET_SWEEP_INTERVAL_HOOKED_MS: "0" };

let sim: Simulator;
let fleet: ReturnType<typeof testFleet>;
let answers: number[] = [];
let sent: number[] = [];
let ids: string[] = [];
const onRequest = (message: unknown) => {
  const { request } = message as { request: { origin: string; path: string } };
  if (request.origin === sim?.url && request.path.includes("/getStateInstance/")) sent.push(Date.now());
};

beforeAll(async () => {
  sim = await startSimulator({ defaults: { rotationMs: 200, scanWindowMs: 60_000 }, hooks: { stateAnswered: (a) => void answers.push(a.at) } });
  fleet = testFleet(env);
  subscribe("undici:request:create", onRequest);
  ids = (await Promise.all(Array.from({ length: INSTANCES }, () => simulatedInstance(fleet, sim, { fate: "authorized" })))).map((i) => i.id);
}, 60_000);
afterAll(async () => {
  unsubscribe("undici:request:create", onRequest);
  await fleet?.close();
  await sim?.close();
});

/** The slot holding `atMs`, with every instance's phase set `spreadPhases` apart from the slot's first. */
async function slotWithFleetAt(atMs: number, spreadPhases: number) {
  const plan = slicePlan(fleet.config)!;
  const slot = slotAt(plan, atMs);
  const [from] = phasesOf(plan, slot.slice);
  await fleet.sql.query(`UPDATE "Instance" SET "sweepPhase" = $1 + $2 * (array_position($3::uuid[], id) - 1), "lastStateAt" = NULL WHERE id = ANY($3::uuid[])`, [
    from, spreadPhases, ids,
  ]);
  answers = [];
  sent = [];
  return { plan, slot, phaseMs: (k: number) => slot.cycleStartMs + ((from + spreadPhases * k) * plan.intervalMs) / PHASES };
}

/** The slot's answers are recorded after it ends: waited for, so the next test starts from its own reset. */
const recorded = () =>
  waitFor("the answers recorded", async () => {
    const { rows } = await fleet.sql.query<{ n: number }>(`SELECT count(*)::int AS n FROM "Instance" WHERE id = ANY($1::uuid[]) AND "lastStateAt" IS NOT NULL`, [ids]);
    return rows[0]!.n === INSTANCES;
  }, 5_000);

const mostWithin = (times: number[], ms: number) => Math.max(...times.map((t) => times.filter((u) => u >= t && u < t + ms).length));

describe("a sweep slot", () => {
  it("taken late, polls the instances it owes at no more than twice its pace rather than all at once", async () => {
    const { plan, slot } = await slotWithFleetAt(Date.now() - 400, 1);
    expect(await sweepSlot(fleet, slot.startMs)).toEqual({ polled: INSTANCES });
    await waitFor("every instance answered", async () => answers.length >= INSTANCES, 5_000, 20);
    expect(sent).toHaveLength(INSTANCES);
    const sorted = [...sent].sort((a, b) => a - b);
    // Owed all at once, they go one every (slice ÷ instances ÷ 2) ms: 2.5 ms here, 250 ms for the lot.
    const gapMs = plan.sliceMs / INSTANCES / 2;
    expect(sorted.at(-1)! - sorted[0]!).toBeGreaterThan(0.6 * gapMs * INSTANCES);
    expect(mostWithin(sorted, 20)).toBeLessThanOrEqual(20);
    await recorded();
  });

  it("taken before it begins, polls no instance before its phase", async () => {
    // 100 phases apart: the instances are due over 460 ms of the slot's 500.
    const { slot, phaseMs } = await slotWithFleetAt(Date.now() + 1_000, 100);
    expect(slot.startMs - Date.now()).toBeGreaterThan(300);
    expect(await sweepSlot(fleet, slot.startMs)).toEqual({ polled: INSTANCES });
    await waitFor("every instance answered", async () => answers.length >= INSTANCES, 5_000, 20);
    expect(sent).toHaveLength(INSTANCES);
    const sorted = [...sent].sort((a, b) => a - b);
    expect(sorted[0]!).toBeGreaterThanOrEqual(phaseMs(0) - 15);
    expect(sorted.at(-1)!).toBeGreaterThanOrEqual(phaseMs(INSTANCES - 1) - 15);
    await recorded();
  });
});
