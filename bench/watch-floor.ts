import { countLogLines } from "./daemons.js";
import type { FloorPollerApi } from "./floor-poller.js";
import { forkMeasuredChild, scratchDatabase, type Run } from "./run-context.js";
import type { FleetSpec } from "./watch-fleet.js";
import { watchReport, type WatchReport } from "./watch-report.js";
import { WatchWindow } from "./watch-window.js";

/** Ids 7303…: the bare poller's instances never meet the daemons' (7304…). */
const FLOOR_ID_PREFIX = "7303";
const START_BOUND_MS = 120_000;
/** Measured intervals of the floor after its warm-up: enough for every instance to be polled twice. */
const FLOOR_INTERVALS = 2;

/**
 * The bare poller against a fresh simulator with the same instances count and latency: one
 * interval of warm-up, then at most FLOOR_INTERVALS measured (never longer than the daemon phase).
 */
export async function watchFloorPhase(run: Run): Promise<WatchReport> {
  const { args, teardown } = run;
  const watch = args.watch!;
  const { tag, databaseUrl, drop } = await scratchDatabase(run);
  const fleet: FleetSpec = { count: watch.instances, idPrefix: FLOOR_ID_PREFIX, seed: tag, webhookTokens: false };
  const phase = { path: "/floor", fleet, stateLatencyMs: watch.providerLatencyMs, rotateMs: args.rotateMs, windowMs: args.windowMs };
  const { simUrl } = await run.peers.call("watchPhase", phase, START_BOUND_MS);
  const endPhase = teardown.add("end the floor phase", () => run.peers.call("endPhase", null));

  const t0 = Date.now();
  const window = new WatchWindow(run, "floor", t0);
  const poller = forkMeasuredChild<FloorPollerApi>(run, "floor-poller.js", "the bare poller", window.meter);
  await run.peers.call("watchStart", { at: t0, webhookTargets: [] });
  const config = { simUrl, fleet, databaseUrl, intervalMs: watch.sweepIntervalMs, providerLatencyMs: watch.providerLatencyMs };
  await Promise.race([poller.link.call("start", config, START_BOUND_MS), poller.died]);
  const readyAt = window.markReady();
  const windowAt = readyAt + watch.sweepIntervalMs;
  await window.open(windowAt, { count: 0, spreadMs: 0 }, poller.died);
  const deadline = Math.min(readyAt + args.seconds * 1000, windowAt + FLOOR_INTERVALS * watch.sweepIntervalMs);
  const measured = await window.until(deadline, poller.died);
  const counts = await poller.link.call("counts", null);
  await poller.stop();
  await endPhase();
  await drop();
  const logs = { jobsFailed: counts.failed, errorLines: (await countLogLines(poller.logPath)).errorLines };
  return watchReport({ measured, logs, logPaths: [poller.logPath], pollShares: null });
}
