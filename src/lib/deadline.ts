/**
 * An AbortSignal that fires after `ms` unless cleared first, optionally also when `also` aborts.
 * AbortSignal.timeout cannot be cleared: its timer fires after every call, however quick, and
 * builds a DOMException each time — at thousands of webhooks and state checks a second, that was
 * a visible share of the daemon's CPU.
 */
export interface Deadline {
  signal: AbortSignal;
  /** True when it was the deadline (not `also`) that aborted. */
  readonly expired: boolean;
  /** Stops the timer; call it when the work is over, however it ended. */
  clear(): void;
}

export function deadline(ms: number, also?: AbortSignal): Deadline {
  const controller = new AbortController();
  let expired = false;
  const timer = setTimeout(() => {
    expired = true;
    controller.abort(new DOMException(`timed out after ${ms} ms`, "TimeoutError"));
  }, ms);
  timer.unref();
  return {
    // AbortSignal.any follows `also` without a listener on it: many calls may share one caller's signal.
    signal: also ? AbortSignal.any([controller.signal, also]) : controller.signal,
    get expired() {
      return expired;
    },
    clear() {
      clearTimeout(timer);
    },
  };
}

/** What `within` rejects with when the work did not settle in time. */
export class TimedOutError extends Error {
  override name = "TimedOutError";
}

/**
 * `work`'s own result, or a TimedOutError after `ms` (with `message`, or the error `late` makes).
 * The timer ends with the work, and a rejection of work that lost the race is not left unhandled.
 */
export async function within<T>(work: Promise<T>, ms: number, late: string | (() => Error) = `no answer within ${ms} ms`): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const gaveUp = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(typeof late === "string" ? new TimedOutError(late) : late()), ms);
  });
  work.catch(() => undefined);
  try {
    return await Promise.race([work, gaveUp]);
  } finally {
    clearTimeout(timer);
  }
}
