import { RETENTION_SCHEDULER_ID, SLICE_JOB_OPTIONS, SWEEP_SCHEDULER_ID } from "../queues.js";
import type { FleetContext } from "./context.js";
import { syncCronSchedule } from "./instances.js";
import { slicePlan } from "./sweep-slices.js";

const RETENTION_EVERY_MS = 3_600_000;

/**
 * Job schedulers live in Redis. Upserting them is idempotent by id, so this runs at start and
 * with every reconcile: after a Redis loss the sweep and per-instance cron schedules come back.
 */
export async function ensureSchedules(ctx: FleetContext): Promise<void> {
  const plan = slicePlan(ctx.config);
  if (plan) {
    await ctx.queues.sweep.upsertJobScheduler(SWEEP_SCHEDULER_ID, { every: plan.sliceMs }, { name: "slice", data: { kind: "slice" }, opts: SLICE_JOB_OPTIONS });
  } else {
    await ctx.queues.sweep.removeJobScheduler(SWEEP_SCHEDULER_ID);
  }
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
 * A daemon that starts sweeps at once the instances nobody checked within the last interval: they
 * may have been logged out while no daemon ran. Several daemons starting together share one sweep;
 * one that joins a running fleet finds nothing stale.
 */
export async function ensureSchedulesAtStart(ctx: FleetContext): Promise<void> {
  await ensureSchedules(ctx);
  await ctx.queues.sweep.add("sweep", { kind: "sweep", staleOnly: true }, { deduplication: { id: "sweep-at-start", ttl: 60_000 } });
}
