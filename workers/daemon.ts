import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import { Worker, type WorkerOptions } from "bullmq";
import { migrationUrl, type Config } from "../src/config.js";
import { openFleet } from "../src/wiring/runtime.js";
import { subscribeCancels } from "../src/fleet/sessions/cancel-bus.js";
import type { FleetContext } from "../src/fleet/context.js";
import { subscribeInstanceChanges } from "../src/fleet/instances/instance-changes.js";
import { joinRoster } from "../src/fleet/provider/daemon-roster.js";
import { observeFleet } from "../src/fleet/observe/observe.js";
import { openPipeline } from "../src/wiring/pipeline.js";
import { reconcile } from "../src/fleet/upkeep/reconcile.js";
import { ensureSchedulesAtStart } from "../src/fleet/triggers/schedules.js";
import { checkSizing } from "../src/fleet/observe/sizing.js";
import { closeStatePoller } from "../src/fleet/triggers/state-sweep.js";
import { startSweepSlots } from "../src/fleet/triggers/sweep-slices.js";
import { startDigestCuts } from "../src/fleet/operators/digests.js";
import { startStormWatch } from "../src/fleet/instances/storm.js";
import { hostBudgetOf } from "../src/fleet/provider/host-budget.js";
import { buildHttpApp } from "../src/http/app.js";
import type { Logger } from "../src/log.js";
import { migrate } from "../src/migrate.js";
import { QUEUE, createRedis, redisTarget, subscriberName, workerConnection } from "../src/queues.js";
import { createNotifyProcessor } from "./notify.js";
import { createSettingsProcessor } from "./settings.js";
import { ABORT, SessionRuns, createSessionProcessor } from "./qr-session.js";
import { createSweepProcessor } from "./sweep.js";
import { within } from "../src/lib/deadline.js";

const CLOSE_BOUND_MS = 5_000;
/** A sweep job's lock: short, so a dead daemon's job is taken over soon; renewed at half. */
const sweepLockMs = (intervalMs: number) => (intervalMs === 0 ? 20_000 : Math.min(20_000, Math.max(2_000, intervalMs / 2)));

export interface Daemon {
  ctx: FleetContext;
  url: string;
  close(): Promise<void>;
}

export async function startDaemon(config: Config, log: Logger): Promise<Daemon> {
  const ctx = openFleet(config, log, { dbPool: config.QRFLEET_DB_POOL });
  const migrated = await migrate(migrationUrl(config)).catch(async (err: unknown) => {
    await ctx.close();
    throw err;
  });
  if (migrated.applied.length) log.info({ applied: migrated.applied }, "migrations applied");
  if (migrated.checksumChanged.length) log.warn({ changed: migrated.checksumChanged }, "applied migrations were edited since");

  const { queues } = ctx;
  const metrics = observeFleet(ctx.events, log);
  const redis = redisTarget(config);
  let closing: Promise<void> | undefined;
  const workerName = `${hostname()}:${process.pid}:${randomBytes(2).toString("hex")}`;
  const workerRedis = workerConnection(redis);
  const base: Omit<WorkerOptions, "concurrency"> = {
    connection: workerRedis.connection,
    prefix: queues.prefix,
    stalledInterval: config.QRFLEET_STALLED_INTERVAL_MS,
  };
  const pipeline = openPipeline(ctx, workerName);
  const runs = new SessionRuns();
  const sessionWorker = new Worker(QUEUE.session, createSessionProcessor({ ctx, pipeline: pipeline.session }, runs), {
    ...base,
    concurrency: config.QRFLEET_CONCURRENCY,
    // A session holds its job for up to ~130 s blocked on a socket; the lock is renewed at half
    // its duration by one batched call per worker, so the default 60 s survives a slow event loop.
    lockDuration: config.QRFLEET_LOCK_DURATION_MS,
    maxStalledCount: 5,
    // In tenths of a second, so a burst of starts is spread over the second too.
    limiter: { max: Math.max(1, Math.round(config.QRFLEET_SESSION_STARTS_PER_S / 10)), duration: 100 },
  });
  const notifyWorker = new Worker(QUEUE.notify, createNotifyProcessor(ctx, pipeline.retries), {
    ...base, concurrency: config.QRFLEET_NOTIFY_CONCURRENCY, lockDuration: config.QRFLEET_LOCK_DURATION_MS,
  });
  const sweepLock = sweepLockMs(config.QRFLEET_SWEEP_INTERVAL_MS);
  const sweepWorker = new Worker(QUEUE.sweep, createSweepProcessor(ctx), { ...base, concurrency: 8, lockDuration: sweepLock });
  let daemonsAlive = 1;
  // A check that sets settings back waits out the instance's reboot (QRFLEET_SETTINGS_VERIFY_AFTER_MS) holding its job.
  const settingsWorker = new Worker(QUEUE.settings, createSettingsProcessor(ctx), {
    ...base, concurrency: config.QRFLEET_SETTINGS_CONCURRENCY, lockDuration: config.QRFLEET_LOCK_DURATION_MS,
  });
  for (const w of [sessionWorker, notifyWorker, sweepWorker, settingsWorker]) {
    w.on("error", (err) => {
      // Sessions handed back at shutdown leave renewals in flight that now fail: expected, not an error.
      if (closing && /could not renew lock/.test(err.message)) return log.debug({ queue: w.name, err: err.message }, "lock renewal after hand-back");
      log.error({ err, queue: w.name }, "worker error");
    });
    w.on("failed", (job, err) => log.warn({ queue: w.name, job: job?.id, err: err.message }, "job failed"));
  }
  // A lost lock does not stop BullMQ's processor: stop the run ourselves and hand the attempt back.
  sessionWorker.on("lockRenewalFailed", (ids) => ids.forEach((id) => runs.cancel(id, ABORT.lockLost)));

  const subscriber = createRedis(redis, true, subscriberName(config.QRFLEET_REDIS_PREFIX));
  // Without a listener ioredis prints each failed reconnect to stderr itself, outside the JSON log.
  const redisDown = (which: string) => (err: Error) => log.warn({ err: err.message, connection: which }, "Redis connection failed; reconnecting");
  subscriber.on("error", redisDown("cancels"));
  queues.connection.on("error", redisDown("queues"));
  const unsubscribe = await subscribeCancels(subscriber, queues.prefix, (jobId) => runs.cancel(jobId, "cancelled"));
  const unsubscribeChanges = await subscribeInstanceChanges(subscriber, ctx);

  const roster = await joinRoster(ctx, workerName, (daemons) => {
    daemonsAlive = daemons;
    hostBudgetOf(ctx).shareWith(daemons);
  });
  await checkSizing(ctx);
  await ensureSchedulesAtStart(ctx);
  // One slot at a time, so the slots go round the daemons (fleet/triggers/sweep-slices.ts).
  const sweepSlots = startSweepSlots(ctx, workerName, { daemons: () => daemonsAlive });
  const digests = startDigestCuts(ctx);
  const storms = startStormWatch(ctx);
  await reconcile(ctx, runs.runsHere);
  const reconcileTimer = setInterval(() => {
    reconcile(ctx, runs.runsHere).catch((err) => log.error({ err }, "reconcile failed"));
  }, config.QRFLEET_RECONCILE_INTERVAL_MS);
  reconcileTimer.unref();

  const app = await buildHttpApp(ctx, { metrics: metrics.registry });
  const url = await app.listen({ port: config.PORT, host: config.HOST });
  log.info({ url, concurrency: config.QRFLEET_CONCURRENCY, worker: workerName }, "qrfleet daemon started");

  const close = () =>
    (closing ??= (async () => {
      log.info("shutting down: no new work, running sessions get the grace period");
      clearInterval(reconcileTimer);
      await app.close().catch(() => undefined);
      const stopRuns = () => runs.cancelAll(ABORT.shutdown);
      const grace = setTimeout(stopRuns, config.QRFLEET_SHUTDOWN_GRACE_MS);
      await closeBounded(sessionWorker, config.QRFLEET_SHUTDOWN_GRACE_MS + CLOSE_BOUND_MS, stopRuns);
      clearTimeout(grace);
      await Promise.all([
        ...[notifyWorker, sweepWorker, settingsWorker].map((w) => closeBounded(w, CLOSE_BOUND_MS)),
        bounded(sweepSlots?.stop(CLOSE_BOUND_MS) ?? Promise.resolve(), CLOSE_BOUND_MS * 2),
        bounded(digests.stop(), CLOSE_BOUND_MS),
        bounded(storms.stop(), CLOSE_BOUND_MS),
      ]);
      await bounded(pipeline.close(), CLOSE_BOUND_MS * 2);
      await bounded(closeStatePoller(ctx), CLOSE_BOUND_MS);
      await roster.stop();
      await unsubscribe().catch(() => undefined);
      await unsubscribeChanges().catch(() => undefined);
      subscriber.disconnect();
      workerRedis.close();
      await ctx.close();
      log.info("qrfleet daemon stopped");
    })());
  return { ctx, url, close };
}

/** Waits for `work` at most `boundMs`; what is left is recovered by the next daemon's reconciler. */
async function bounded(work: Promise<void>, boundMs: number): Promise<void> {
  await within(work, boundMs).catch(() => undefined);
}

/** BullMQ's close() waits for active jobs without a bound; ours has one, then forces. */
async function closeBounded(worker: Worker, boundMs: number, stopRuns = () => worker.cancelAllJobs(ABORT.shutdown)): Promise<void> {
  try {
    await within(worker.close(), boundMs);
  } catch {
    stopRuns();
    await bounded(worker.close(true), CLOSE_BOUND_MS);
  }
}
