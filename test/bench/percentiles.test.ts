import { describe, expect, it } from "vitest";
import { nearestRank, summarize } from "../../bench/percentiles.js";

describe("nearest-rank percentiles", () => {
  it("picks an observed value: the smallest with at least p % at or below it", () => {
    const sorted = [15, 20, 35, 40, 50];
    expect(nearestRank(sorted, 5)).toBe(15);
    expect(nearestRank(sorted, 30)).toBe(20);
    expect(nearestRank(sorted, 40)).toBe(20);
    expect(nearestRank(sorted, 50)).toBe(35);
    expect(nearestRank(sorted, 100)).toBe(50);
  });

  it("p99 of 100 values is the 99th, of 1,000 the 990th", () => {
    const hundred = Array.from({ length: 100 }, (_, i) => i + 1);
    expect(nearestRank(hundred, 99)).toBe(99);
    const thousand = Array.from({ length: 1000 }, (_, i) => i + 1);
    expect(nearestRank(thousand, 99)).toBe(990);
    expect(nearestRank([7], 99)).toBe(7);
  });

  it("is null for no values and refuses a percentile outside (0, 100]", () => {
    expect(nearestRank([], 50)).toBeNull();
    expect(() => nearestRank([1], 0)).toThrow(RangeError);
    expect(() => nearestRank([1], 101)).toThrow(RangeError);
  });

  it("summarize sorts numerically, not as text", () => {
    expect(summarize([100, 9, 20, 3, 1000])).toEqual({ p50: 20, p99: 1000, max: 1000 });
    expect(summarize([])).toEqual({ p50: null, p99: null, max: null });
  });
});
