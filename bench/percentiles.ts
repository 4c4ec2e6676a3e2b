/** Latency figures of a phase: nearest-rank percentiles over every recorded value, nothing estimated. */

export interface LatencySummary {
  p50: number | null;
  p99: number | null;
  max: number | null;
}

/**
 * The nearest-rank p-th percentile of an ascending array: the smallest value such that at
 * least p % of the values are ≤ it. No interpolation, so the figure is always a latency that
 * was really observed. Null for an empty array.
 */
export function nearestRank(sorted: ArrayLike<number>, p: number): number | null {
  if (!(p > 0 && p <= 100)) throw new RangeError(`percentile must be in (0, 100], got ${p}`);
  if (sorted.length === 0) return null;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

/** p50, p99 and max of unsorted values; a Float64Array sorts numerically and compactly (180,000 values ≈ 1.4 MB). */
export function summarize(values: ArrayLike<number>): LatencySummary {
  const sorted = Float64Array.from(values).sort();
  return { p50: nearestRank(sorted, 50), p99: nearestRank(sorted, 99), max: sorted.length ? sorted[sorted.length - 1]! : null };
}
