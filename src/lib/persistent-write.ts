import { setTimeout as sleep } from "node:timers/promises";

/**
 * A write whose loss costs more than its delay, tried again while PostgreSQL is away (a restart
 * takes seconds): what a peer already got (a webhook's 200, an email's 250, a scan) can only be
 * recorded, never asked again. Tries every `firstDelayMs`, doubling to `maxDelayMs`, at least
 * `tries` times and until `forMs` after the first try, or until `signal` aborts; then the last
 * error is thrown.
 */
export interface PersistentWriteOptions {
  forMs: number;
  /** Tries made whatever `forMs` says. Default: 1 */
  tries?: number;
  /** Wait before the second try, doubled for each later one, in ms. Default: 200 */
  firstDelayMs?: number;
  /** Longest wait between two tries, in ms. Default: 2000 */
  maxDelayMs?: number;
  signal?: AbortSignal;
  /** Told about each failed try that will be tried again. */
  onRetry?(err: unknown): void;
}

export async function writePersistently<T>(write: () => Promise<T>, opts: PersistentWriteOptions): Promise<T> {
  const until = Date.now() + opts.forMs;
  const first = opts.firstDelayMs ?? 200;
  const max = opts.maxDelayMs ?? 2_000;
  for (let attempt = 1; ; attempt++) {
    try {
      return await write();
    } catch (err) {
      const wait = Math.min(first * 2 ** (attempt - 1), max);
      const again = attempt < (opts.tries ?? 1) || Date.now() + wait <= until;
      if (opts.signal?.aborted || !again) throw err;
      opts.onRetry?.(err);
      await sleep(wait);
    }
  }
}
