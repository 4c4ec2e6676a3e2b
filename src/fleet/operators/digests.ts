import { cutDigests } from "../../notify/digests.js";
import { addNotifyJobs } from "../../queues.js";
import type { FleetContext } from "../context.js";

/**
 * Each daemon looks for digests that are due a few times per group window; the statement lets one
 * daemon at a time cut them, and the notify queue sends them. A digest cut but not queued (Redis
 * away) is pending in PostgreSQL, where the reconciler finds it.
 */

export interface DigestCuts {
  stop(): Promise<void>;
}

/** How often to look: a quarter of the window, within 100 ms to 5 s. */
export const digestCheckMs = (windowMs: number) => Math.min(5000, Math.max(100, Math.floor(windowMs / 4)));

export function startDigestCuts(ctx: FleetContext): DigestCuts {
  const timing = { windowMs: ctx.config.QRFLEET_DIGEST_WINDOW_MS, intervalMs: ctx.config.QRFLEET_DIGEST_INTERVAL_MS };
  let running: Promise<void> | null = null;
  const check = async () => {
    const cut = await cutDigests(ctx.sql, timing);
    await addNotifyJobs(ctx.queues, cut.map((c) => c.id));
  };
  const timer = setInterval(() => {
    running ??= check()
      .catch((err: unknown) => ctx.log.warn({ err }, "could not cut or queue digests; the next check or the reconciler will"))
      .finally(() => (running = null));
  }, digestCheckMs(timing.windowMs));
  timer.unref();
  return {
    async stop() {
      clearInterval(timer);
      await running;
    },
  };
}
