import { describe, expect, it } from "vitest";
import { sizingAdvice, SESSIONS_PER_PROCESS } from "../../src/fleet/sizing.js";

describe("sizing advice at boot", () => {
  it("says nothing when the running daemons can hold every enabled instance at once", () => {
    expect(sizingAdvice(0, 500)).toBeNull();
    expect(sizingAdvice(10_000, 10_000)).toBeNull();
    expect(sizingAdvice(12_000, 6_000, 2)).toBeNull();
  });

  it("names the concurrency to set when one process can hold the fleet", () => {
    expect(sizingAdvice(2_000, 500)).toBe(
      "set QRFLEET_CONCURRENCY to at least 2000: 2000 instances are enabled, and at most 500 sessions run at once in this process",
    );
    expect(sizingAdvice(9_000, 4_000, 2)).toMatch(/^set QRFLEET_CONCURRENCY to at least 4500:/);
  });

  it("names how many processes to run when the fleet outgrows one", () => {
    expect(sizingAdvice(25_000, 10_000)).toBe(
      `run 3 daemon processes with QRFLEET_CONCURRENCY=8334: 25000 instances are enabled and one process holds about ${SESSIONS_PER_PROCESS} sessions`,
    );
  });
});
