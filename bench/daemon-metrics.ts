/**
 * A daemon's own count of the state checks its sweep made: `qrfleet_sweep_polls_total` on its
 * /metrics, every labelled series summed. Null when the daemon does not export that counter (or
 * does not answer), so the bench reports no shares rather than wrong ones.
 */

export const SWEEP_POLLS_METRIC = "qrfleet_sweep_polls_total";

/** The sum of every series of `name` in a Prometheus text exposition; null when it has none. */
export function sumSeries(exposition: string, name: string): number | null {
  let sum: number | null = null;
  for (const line of exposition.split("\n")) {
    if (!line.startsWith(name)) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{.*\})?\s+(\S+)/.exec(line);
    if (!match || match[1] !== name) continue;
    const value = Number(match[2]);
    if (Number.isFinite(value)) sum = (sum ?? 0) + value;
  }
  return sum;
}

export async function sweepPolls(port: number, adminToken: string): Promise<number | null> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/metrics`, {
      headers: { authorization: `Bearer ${adminToken}` },
      signal: AbortSignal.timeout(5_000),
    });
    if (!res.ok) return null;
    return sumSeries(await res.text(), SWEEP_POLLS_METRIC);
  } catch {
    return null;
  }
}

/** Each daemon's share of the polls between two readings; null unless every daemon reported both. */
export function pollShares(before: ReadonlyArray<number | null>, after: ReadonlyArray<number | null>): number[] | null {
  const deltas = after.map((a, k) => (a === null || before[k] == null ? null : a - before[k]!));
  if (deltas.some((d) => d === null)) return null;
  const total = (deltas as number[]).reduce((a, b) => a + b, 0);
  return total > 0 ? (deltas as number[]).map((d) => Math.round((d / total) * 1000) / 1000) : null;
}
