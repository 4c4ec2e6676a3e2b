import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sweepFleet, sweepGapMs } from "../../src/fleet/triggers/sweep.js";
import { startSimulator, type Simulator } from "../../src/simulator/index.js";
import { newPrefix, simulatedInstance, testConfig, testFleet } from "../support/fleet.js";

/** The sweep spreads its provider calls over its window instead of bursting them. */

const polls: Array<{ idInstance: string; at: number }> = [];
let sim: Simulator;
let fleet: ReturnType<typeof testFleet>;

beforeAll(async () => {
  sim = await startSimulator({
    defaults: { fate: "authorized" },
    hooks: { restCall: (c) => void (c.method === "getStateInstance" && polls.push({ idInstance: c.idInstance, at: c.at })) },
  });
  // Six instances over 1.2 s: one call every 200 ms, though eight lanes could make them all at once.
  fleet = testFleet({ QRFLEET_REDIS_PREFIX: newPrefix(), QRFLEET_SWEEP_SPREAD_MS: "1200", QRFLEET_SWEEP_MIN_RATE_PER_S: "1", QRFLEET_SWEEP_CONCURRENCY: "8" });
});
afterAll(async () => {
  await fleet?.close();
  await sim?.close();
});

describe("the sweep's pace", () => {
  it("spaces its calls evenly over the spread, across pages, and still records every instance page by page", async () => {
    const instances = await Promise.all(Array.from({ length: 6 }, () => simulatedInstance(fleet, sim, {})));
    const result = await sweepFleet(fleet, undefined, { pageSize: 2 });
    expect(result).toMatchObject({ checked: 6, errors: 0 });
    expect(polls.map((p) => p.idInstance).sort()).toEqual(instances.map((i) => i.idInstance).sort());
    const gaps = polls.slice(1).map((p, i) => p.at - polls[i]!.at);
    // Turns are 200 ms apart; a request's way to the simulator varies by a few ms, so the bounds leave room.
    for (const gap of gaps) expect(gap).toBeGreaterThanOrEqual(100);
    expect(polls.at(-1)!.at - polls[0]!.at).toBeGreaterThanOrEqual(950);
    const rows = await fleet.db.instance.findMany({ where: { id: { in: instances.map((i) => i.id) } } });
    expect(rows.every((r) => r.lastState === "authorized")).toBe(true);
  });

  it("keeps the spread under the interval, and never polls slower than the floor rate", () => {
    const config = (env: Record<string, string>) => testConfig(env);
    expect(sweepGapMs(config({ QRFLEET_SWEEP_SPREAD_MS: "45000", QRFLEET_SWEEP_INTERVAL_MS: "60000", QRFLEET_SWEEP_MIN_RATE_PER_S: "1" }), 10_000)).toBe(4.5);
    expect(sweepGapMs(config({ QRFLEET_SWEEP_SPREAD_MS: "45000", QRFLEET_SWEEP_INTERVAL_MS: "10000", QRFLEET_SWEEP_MIN_RATE_PER_S: "1" }), 9_000)).toBe(1);
    expect(sweepGapMs(config({ QRFLEET_SWEEP_SPREAD_MS: "45000", QRFLEET_SWEEP_INTERVAL_MS: "60000", QRFLEET_SWEEP_MIN_RATE_PER_S: "100" }), 20)).toBe(10);
    expect(sweepGapMs(config({ QRFLEET_SWEEP_SPREAD_MS: "0" }), 10_000)).toBe(0);
  });
});
