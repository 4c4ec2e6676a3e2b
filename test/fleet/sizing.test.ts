import { describe, expect, it } from "vitest";
import { describeSizing, planSizing, SESSIONS_PER_PROCESS, SWEEP_POLLS_PER_PROCESS, type SizingSettings } from "../../src/fleet/observe/sizing.js";

const defaults: SizingSettings = {
  concurrency: 10_000,
  daemons: 1,
  logoutHeadroomPercent: 10,
  sweepIntervalMs: 60_000,
  hookedSweepIntervalMs: 60_000,
};
const settings = (s: Partial<SizingSettings> = {}): SizingSettings => ({ ...defaults, ...s });
const linked = (enabled: number) => ({ enabled, inSession: 0, hooked: 0 });

describe("sizing advice at boot", () => {
  it("asks one daemon for a large fleet that is linked: room for a mass logout, not for every instance", () => {
    const z = planSizing(linked(30_000), settings());
    expect(z.sessionsNeeded).toBe(3_000);
    expect(z.sweepPollsPerSecond).toBe(500);
    expect(z.daemonsNeeded).toBe(1);
    expect(z.advice).toBeNull();
    expect(describeSizing(z)).toBe(
      "sizing: sessions: 3000 may run at once (0 unlinked or in session now + 10% of 30000 enabled for a mass logout), room for 10000; " +
        `sweep: 500 polls a second (30000 enabled, 0 hooked), room for about ${SWEEP_POLLS_PER_PROCESS}; 1 daemon holds both`,
    );
  });

  it("counts the instances unlinked now on top of the headroom, never more sessions than instances", () => {
    expect(planSizing({ enabled: 10_000, inSession: 2_500, hooked: 0 }, settings()).sessionsNeeded).toBe(3_500);
    expect(planSizing({ enabled: 1_000, inSession: 950, hooked: 0 }, settings()).sessionsNeeded).toBe(1_000);
    expect(planSizing({ enabled: 1_000, inSession: 0, hooked: 0 }, settings({ logoutHeadroomPercent: 100 })).sessionsNeeded).toBe(1_000);
    expect(planSizing({ enabled: 1_000, inSession: 40, hooked: 0 }, settings({ logoutHeadroomPercent: 0 })).sessionsNeeded).toBe(40);
  });

  it("names the concurrency to set when the running daemons can hold the sessions", () => {
    expect(planSizing({ enabled: 2_000, inSession: 1_000, hooked: 0 }, settings({ concurrency: 500 })).advice).toBe(
      "set QRFLEET_CONCURRENCY to at least 1200: 1200 sessions may run at once, and at most 500 run in this process",
    );
    expect(planSizing({ enabled: 9_000, inSession: 8_000, hooked: 0 }, settings({ concurrency: 4_000, daemons: 2 })).advice).toMatch(
      /^set QRFLEET_CONCURRENCY to at least 4450:/,
    );
  });

  it("names how many processes to run when the unlinked instances outgrow one", () => {
    const z = planSizing({ enabled: 30_000, inSession: 25_000, hooked: 0 }, settings());
    expect(z.sessionsNeeded).toBe(28_000);
    expect(z.advice).toBe(
      `run 3 daemon processes: 28000 sessions may run at once and one process holds about ${SESSIONS_PER_PROCESS}`,
    );
    expect(planSizing({ enabled: 30_000, inSession: 25_000, hooked: 0 }, settings({ concurrency: 5_000 })).advice).toMatch(
      /^run 3 daemon processes with QRFLEET_CONCURRENCY=9334: /,
    );
  });

  it("names the daemons or the sweep interval the sweep needs, whatever the sessions need", () => {
    const z = planSizing(linked(200_000), settings({ logoutHeadroomPercent: 5 }));
    expect(z.sessionsNeeded).toBe(SESSIONS_PER_PROCESS);
    expect(z.sweepPollsPerSecond).toBe(3_334);
    expect(z.advice).toBe(
      `run 2 daemon processes: the sweep makes 3334 polls a second and one process makes about ${SWEEP_POLLS_PER_PROCESS} (or set QRFLEET_SWEEP_INTERVAL_MS to at least 100000)`,
    );
    expect(planSizing(linked(200_000), settings({ logoutHeadroomPercent: 5, daemons: 2 })).advice).toBeNull();
    expect(planSizing(linked(200_000), settings({ logoutHeadroomPercent: 5, sweepIntervalMs: 100_000 })).advice).toBeNull();
    expect(planSizing(linked(200_000), settings()).advice).toMatch(/^run 2 daemon processes: 20000 sessions may run at once .*; the sweep makes 3334 polls/);
  });

  it("counts hooked instances at their own sweep interval, and no polls when the periodic sweep is off", () => {
    const z = planSizing({ enabled: 120_000, inSession: 0, hooked: 90_000 }, settings({ logoutHeadroomPercent: 5, hookedSweepIntervalMs: 600_000 }));
    expect(z.sweepPollsPerSecond).toBe(500 + 150);
    expect(z.advice).toBeNull();
    expect(planSizing({ enabled: 120_000, inSession: 0, hooked: 90_000 }, settings({ hookedSweepIntervalMs: 0 })).sweepPollsPerSecond).toBe(2_000);
    expect(planSizing(linked(500_000), settings({ sweepIntervalMs: 0, logoutHeadroomPercent: 1 }))).toMatchObject({ sweepPollsPerSecond: 0, advice: null });
  });
});
