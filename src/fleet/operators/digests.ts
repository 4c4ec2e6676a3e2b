import { cutDigests } from "../../notify/digests.js";
import { startTicker, type Ticker } from "../../lib/ticker.js";
import { addNotifyJobs } from "../../queues.js";
import type { FleetContext } from "../context.js";

/**
 * Each daemon looks for digests that are due a few times per group window; the statement lets one
 * daemon at a time cut them, and the notify queue sends them. A digest cut but not queued (Redis
 * away) is pending in PostgreSQL, where the reconciler finds it.
 */

/** How often to look: a quarter of the window, within 100 ms to 5 s. */
export const digestCheckMs = (windowMs: number) => Math.min(5000, Math.max(100, Math.floor(windowMs / 4)));

export function startDigestCuts(ctx: FleetContext): Ticker {
  const timing = { windowMs: ctx.config.QRFLEET_DIGEST_WINDOW_MS, intervalMs: ctx.config.QRFLEET_DIGEST_INTERVAL_MS };
  const check = async () => {
    const cut = await cutDigests(ctx.sql, timing);
    await addNotifyJobs(ctx.queues, cut.map((c) => c.id));
  };
  return startTicker(digestCheckMs(timing.windowMs), check, (err) =>
    ctx.log.warn({ err }, "could not cut or queue digests; the next check or the reconciler will"),
  );
}
