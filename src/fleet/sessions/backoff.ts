/**
 * Delay before attempt `next` (2, 3, …): exponential from `baseMs`, capped at `maxMs`, with
 * "equal jitter" — half fixed, half random — so retries of a fleet that timed out together spread
 * out, while every delay stays within [cap/2, cap] and the schedule remains recognisable.
 */
export function backoffDelayMs(next: number, baseMs: number, maxMs: number, random: () => number = Math.random): number {
  const exponent = Math.max(0, next - 2);
  const cap = Math.min(maxMs, baseMs * 2 ** Math.min(exponent, 40));
  return Math.round(cap / 2 + random() * (cap / 2));
}
