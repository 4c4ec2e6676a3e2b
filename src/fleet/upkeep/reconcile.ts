import { addNotifyJobs, addSessionJob, notifyJobId, sessionJobId } from "../../queues.js";
import type { FleetContext } from "../context.js";
import { ensureSchedules } from "../triggers/schedules.js";
import { restoreSettingsChecks } from "../instances/settings-watch.js";
import { OPEN_STATUSES } from "../instances/open-session.js";

/**
 * PostgreSQL is the truth and Redis may lose everything (it keeps nothing on disk). At start and
 * periodically this puts back every job that PostgreSQL says is due but Redis does not hold.
 */
export interface ReconcileResult {
  sessionsRestored: number;
  /** Pending deliveries with no job that were already due (those still leased get a job at the lease's end). */
  deliveriesRestored: number;
  /** Settings checks after a re-link, due in PostgreSQL, whose job Redis no longer held. */
  settingsChecksRestored: number;
}

const BATCH = 200;
const DEAD_STATES = new Set(["completed", "failed", "unknown"]);

/**
 * Says whether this process is running an attempt itself: its job may be gone from Redis, but the
 * run goes on and ends it (or hands it back, and the next pass restores it).
 */
export type RunsHere = (sessionId: string, attempt: number) => boolean;

export async function reconcile(ctx: FleetContext, runsHere: RunsHere = () => false): Promise<ReconcileResult> {
  await ensureSchedules(ctx);
  const sessionsRestored = await restoreSessions(ctx, runsHere);
  const deliveriesRestored = await restoreDeliveries(ctx);
  const settingsChecksRestored = await restoreSettingsChecks(ctx, (state) => DEAD_STATES.has(state));
  if (sessionsRestored || deliveriesRestored || settingsChecksRestored) {
    ctx.log.warn({ sessionsRestored, deliveriesRestored, settingsChecksRestored }, "reconciler restored jobs missing from Redis");
  }
  return { sessionsRestored, deliveriesRestored, settingsChecksRestored };
}

async function restoreSessions(ctx: FleetContext, runsHere: RunsHere): Promise<number> {
  let restored = 0;
  let cursor: string | undefined;
  for (;;) {
    const page = await ctx.db.qrSession.findMany({
      where: { status: { in: [...OPEN_STATUSES] }, ...(cursor && { id: { gt: cursor } }) },
      select: { id: true, attempt: true, dueAt: true },
      orderBy: { id: "asc" },
      take: BATCH,
    });
    if (page.length === 0) return restored;
    cursor = page[page.length - 1]!.id;
    const states = await Promise.all(page.map((s) => ctx.queues.session.getJobState(sessionJobId(s.id, s.attempt))));
    for (const [i, s] of page.entries()) {
      if (!DEAD_STATES.has(states[i]!) || runsHere(s.id, s.attempt)) continue;
      // A finished job for an open session means its run died before recording an outcome.
      await ctx.queues.session.remove(sessionJobId(s.id, s.attempt)).catch(() => 0);
      await addSessionJob(ctx.queues, { sessionId: s.id, attempt: s.attempt }, s.dueAt.getTime() - Date.now());
      restored++;
    }
  }
}

async function restoreDeliveries(ctx: FleetContext): Promise<number> {
  let restored = 0;
  let cursor: string | undefined;
  for (;;) {
    const page = await ctx.db.delivery.findMany({
      // A delivery leased to a process (sending it itself) gets a job due when the lease runs out:
      // if that process is alive it has sent it by then, and the job finds nothing to do.
      where: { status: "pending", ...(cursor && { id: { gt: cursor } }) },
      select: { id: true, nextTryAt: true },
      orderBy: { id: "asc" },
      take: BATCH,
    });
    if (page.length === 0) return restored;
    cursor = page[page.length - 1]!.id;
    const states = await Promise.all(page.map((d) => ctx.queues.notify.getJobState(notifyJobId(d.id))));
    const missing = page.filter((_, i) => DEAD_STATES.has(states[i]!)).map((d) => ({ id: d.id, dueAt: d.nextTryAt }));
    for (const { id } of missing) await ctx.queues.notify.remove(notifyJobId(id)).catch(() => 0);
    await addNotifyJobs(ctx.queues, missing);
    const now = Date.now();
    restored += missing.filter((d) => d.dueAt.getTime() <= now).length;
  }
}
