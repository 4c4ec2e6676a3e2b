/**
 * The `Retry-After` header (RFC 9110 §10.2.3): delay-seconds or an HTTP date. Both the provider
 * and operators' webhook receivers send it; whatever they send, the wait that comes out is
 * bounded, so a receiver cannot park a delivery for a year or make us hammer it with "-1".
 */

/** Longest HTTP date or number worth reading; anything longer is not a Retry-After. */
const MAX_HEADER_LENGTH = 64;
const SECONDS = /^\d{1,10}$/;

/**
 * The wait in ms the header asks for, at most `maxMs`, or null when there is none or it cannot be
 * read (garbage, negative, fractional, a date that does not parse). A date in the past is 0.
 */
export function retryAfterMs(header: string | string[] | undefined, now: Date, maxMs: number): number | null {
  const value = (Array.isArray(header) ? header[0] : header)?.trim();
  if (!value || value.length > MAX_HEADER_LENGTH) return null;
  if (SECONDS.test(value)) return Math.min(Number(value) * 1000, maxMs);
  // An HTTP date always names its weekday and GMT; Date.parse alone would accept "1" or "2026".
  if (!/^[A-Za-z]{3,9},? .*GMT$/.test(value)) return null;
  const at = Date.parse(value);
  if (Number.isNaN(at)) return null;
  return Math.min(Math.max(0, at - now.getTime()), maxMs);
}
