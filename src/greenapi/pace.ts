/**
 * Pacing of one instance's REST calls. The provider allows about one call per second per
 * instance and method, and answers 429 beyond it; a limiter spaces calls so that rarely happens
 * and, told of a 429, makes every caller of that instance wait out the time the provider asked for.
 */
export interface CallLimiter {
  /** Resolves when a call of `method` may go now (its slot is taken); rejects when `signal` aborts. */
  acquire(method: string, signal?: AbortSignal): Promise<void>;
  /** The provider asked for `ms` of quiet on `method`: no call of it goes before then. */
  holdOff(method: string, ms: number): Promise<void>;
}

/** A 429 without a readable Retry-After waits this, doubled on each further 429 in a row. */
const RATE_LIMIT_FALLBACK_MS = 1_000;

/** The wait after the `retry`-th 429 in a row (0 for the first) that named none itself, at most `maxMs`. */
export function rateLimitFallbackMs(retry: number, maxMs: number): number {
  return Math.min(RATE_LIMIT_FALLBACK_MS * 2 ** retry, maxMs);
}

/** Sleeps `ms`, or rejects with the signal's reason when it aborts first. */
export function waitFor(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.reject(signal.reason);
  if (ms <= 0) return Promise.resolve();
  // A sweep's calls share one signal: AbortSignal.any follows it without a listener on it each.
  const own = signal ? AbortSignal.any([signal]) : undefined;
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(own!.reason);
    };
    const timer = setTimeout(() => {
      own?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    own?.addEventListener("abort", onAbort, { once: true });
  });
}
