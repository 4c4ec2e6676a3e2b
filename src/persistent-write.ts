/**
 * A write whose loss costs more than its delay, tried again while PostgreSQL is away (a restart
 * takes seconds): what a peer already got (a webhook's 200, an email's 250, a scan) can only be
 * recorded, never asked again. Tries every 200 ms, doubling to 2 s, until `forMs` after the first
 * try or until `signal` aborts; then the last error is thrown.
 */
export interface PersistentWriteOptions {
  forMs: number;
  signal?: AbortSignal;
  /** Told about each failed try that will be tried again. */
  onRetry?(err: unknown): void;
}

export async function writePersistently<T>(write: () => Promise<T>, opts: PersistentWriteOptions): Promise<T> {
  const until = Date.now() + opts.forMs;
  for (let wait = 200; ; wait = Math.min(wait * 2, 2_000)) {
    try {
      return await write();
    } catch (err) {
      if (opts.signal?.aborted || Date.now() + wait > until) throw err;
      opts.onRetry?.(err);
      await new Promise((r) => setTimeout(r, wait));
    }
  }
}
