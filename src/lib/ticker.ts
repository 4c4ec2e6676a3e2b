/**
 * Runs `work` every `everyMs` on an unref'd timer, one run at a time (a tick while one runs is
 * skipped). A run that throws is handed to `onError` and the next tick tries again.
 */
export interface Ticker {
  /** Stops the timer and waits for a run in progress. */
  stop(): Promise<void>;
}

export function startTicker(everyMs: number, work: () => Promise<unknown>, onError: (err: unknown) => void): Ticker {
  let running: Promise<void> | null = null;
  const timer = setInterval(() => {
    running ??= work()
      .then(() => undefined, onError)
      .finally(() => (running = null));
  }, everyMs);
  timer.unref();
  return {
    async stop() {
      clearInterval(timer);
      await running;
    },
  };
}
