import { Queue, type ConnectionOptions } from "bullmq";
import { RETENTION_SCHEDULER_ID, RETIRED_SLICE_QUEUE, SWEEP_SCHEDULER_ID } from "../../queues.js";
import type { FleetContext } from "../context.js";
import { syncCronSchedule } from "../instances/instances.js";

const RETENTION_EVERY_MS = 3_600_000;

/**
 * Schedules live in Redis. Upserting them is idempotent by id, so this runs at start and with every
 * reconcile: after a Redis loss the retention and the per-instance cron schedules come back.
 */
export async function ensureSchedules(ctx: FleetContext): Promise<void> {
  await ctx.queues.sweep.removeJobScheduler(SWEEP_SCHEDULER_ID);
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
  await emptyRetiredSliceQueue(ctx);
  await ctx.queues.sweep.add("sweep", { kind: "sweep", staleOnly: true }, { deduplication: { id: "sweep-at-start", ttl: 60_000 } });
}

/**
 * The queue the sweep's slots were jobs of, emptied for good: its history would stay in Redis
 * forever, and a daemon of the version before stops sweeping through it while the claims of this
 * one cover every slot.
 */
async function emptyRetiredSliceQueue(ctx: FleetContext): Promise<void> {
  const retired = new Queue(RETIRED_SLICE_QUEUE, { connection: ctx.queues.connection as ConnectionOptions, prefix: ctx.queues.prefix });
  retired.on("error", () => undefined);
  try {
    if (await ctx.queues.connection.exists(`${ctx.queues.prefix}:${RETIRED_SLICE_QUEUE}:meta`)) await retired.obliterate({ force: true });
  } finally {
    await retired.close();
  }
}
