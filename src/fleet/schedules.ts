import { RETENTION_SCHEDULER_ID, SWEEP_SCHEDULER_ID } from "../queues.js";
import type { FleetContext } from "./context.js";
import { syncCronSchedule } from "./instances.js";

const RETENTION_EVERY_MS = 3_600_000;

/**
 * Job schedulers live in Redis. Upserting them is idempotent by id, so this runs at start and
 * with every reconcile: after a Redis loss the sweep and per-instance cron schedules come back.
 */
export async function ensureSchedules(ctx: FleetContext): Promise<void> {
  await ctx.queues.sweep.upsertJobScheduler(SWEEP_SCHEDULER_ID, { every: ctx.config.QRFLEET_SWEEP_INTERVAL_MS }, {
    name: "sweep",
    data: { kind: "sweep" },
  });
  await ctx.queues.sweep.upsertJobScheduler(RETENTION_SCHEDULER_ID, { every: RETENTION_EVERY_MS }, {
    name: "retention",
    data: { kind: "retention" },
  });
  const withCron = await ctx.db.instance.findMany({
    where: { cron: { not: null } },
    select: { id: true, cron: true, enabled: true },
  });
  for (const inst of withCron) await syncCronSchedule(ctx, inst);
}

/**
 * A daemon that starts sweeps at once: instances may have been logged out while no daemon ran.
 * (A scheduler created now runs its first sweep at once by itself.) Several daemons starting
 * together share one sweep.
 */
export async function ensureSchedulesAtStart(ctx: FleetContext): Promise<void> {
  const existed = await ctx.queues.sweep.getJobScheduler(SWEEP_SCHEDULER_ID);
  await ensureSchedules(ctx);
  if (existed) await ctx.queues.sweep.add("sweep", { kind: "sweep" }, { deduplication: { id: "sweep-at-start", ttl: 60_000 } });
}
