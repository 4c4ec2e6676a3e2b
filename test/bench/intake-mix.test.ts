import { describe, expect, it } from "vitest";
import { IntakeMix, LATE_BY_MAX_S, type HookCall } from "../../bench/intake-mix.js";

/** The intake bench's mix: its `expected()` must be the newest event sent to each instance, or `lost` means nothing. */

/** A repeatable stream of numbers in [0, 1). */
function seeded(seed: number): () => number {
  let x = seed;
  return () => ((x = (x * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31);
}

describe("the intake bench's mix of webhooks", () => {
  it("expects, for each instance, the state of its newest event, which is never two states in one second", () => {
    const mix = new IntakeMix(20, seeded(7));
    const calls: HookCall[] = [];
    for (let s = 1_000; s < 1_120; s++) for (let k = 0; k < 15; k++) calls.push(mix.next(s));
    for (let index = 0; index < 20; index++) {
      const mine = calls.filter((c) => c.index === index);
      const newest = Math.max(...mine.map((c) => c.timestamp));
      const statesAtNewest = new Set(mine.filter((c) => c.timestamp === newest).map((c) => c.state));
      expect([...statesAtNewest]).toEqual([mix.expected()[index]]);
    }
  });

  it("sends every kind, and late events older than the newest of their instance by 1 to 30 s", () => {
    const mix = new IntakeMix(5, seeded(11));
    const newest = new Map<number, number>();
    for (let s = 1_000; s < 1_300; s++) {
      for (let k = 0; k < 5; k++) {
        const call = mix.next(s);
        if (call.kind === "late") {
          const by = newest.get(call.index)! - call.timestamp;
          expect(by).toBeGreaterThanOrEqual(1);
          expect(by).toBeLessThanOrEqual(LATE_BY_MAX_S);
        } else {
          newest.set(call.index, Math.max(newest.get(call.index) ?? 0, call.timestamp));
        }
      }
    }
    expect(Object.values(mix.counts).every((n) => n > 0)).toBe(true);
  });
});
