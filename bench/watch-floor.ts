import path from "node:path";
import { profileSummary } from "./daemon-phase.js";
import { countLogLines } from "./daemons.js";
import { cpuProfileFlags } from "./profile.js";
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
 * With --floor-processes K, K bare pollers share the fleet, instance i to poller i mod K; with
 * --profile the first is CPU-profiled as a daemon is.
 */
export async function watchFloorPhase(run: Run): Promise<WatchReport & { profile?: string }> {
  const { args, teardown } = run;
  const watch = args.watch!;
  const { tag, databaseUrl, drop } = await scratchDatabase(run);
  const fleet: FleetSpec = { count: watch.instances, idPrefix: FLOOR_ID_PREFIX, seed: tag, webhookTokens: false };
  const phase = { path: "/floor", fleet, stateLatencyMs: watch.providerLatencyMs, rotateMs: args.rotateMs, windowMs: args.windowMs };
  const { simUrl } = await run.peers.call("watchPhase", phase, START_BOUND_MS);
  const endPhase = teardown.add("end the floor phase", () => run.peers.call("endPhase", null));

  const t0 = Date.now();
  const window = new WatchWindow(run, "floor", t0);
  const profileDir = args.profile ? path.join(run.runDir, "floor-profile") : null;
  const pollers = Array.from({ length: watch.floorProcesses }, (_, index) =>
    forkMeasuredChild<FloorPollerApi>(run, "floor-poller.js", `bare poller ${index + 1}`, window.meter, {
      logName: `floor-poller-${index + 1}.log`,
      execArgv: profileDir && index === 0 ? cpuProfileFlags(profileDir) : [],
    }));
  const died = Promise.race(pollers.map((p) => p.died));
  await run.peers.call("watchStart", { at: t0, webhookTargets: [] });
  const config = { simUrl, fleet, databaseUrl, intervalMs: watch.sweepIntervalMs, providerLatencyMs: watch.providerLatencyMs };
  // One after the other: each creates the table if it is not there yet.
  for (const [index, poller] of pollers.entries()) {
    await Promise.race([poller.link.call("start", { ...config, share: { index, of: pollers.length } }, START_BOUND_MS), died]);
  }
  const readyAt = window.markReady();
  const windowAt = readyAt + watch.sweepIntervalMs;
  await window.open(windowAt, { count: 0, spreadMs: 0 }, died);
  const deadline = Math.min(readyAt + args.seconds * 1000, windowAt + FLOOR_INTERVALS * watch.sweepIntervalMs);
  const measured = await window.until(deadline, died);
  const counts = await Promise.all(pollers.map((p) => p.link.call("counts", null)));
  await Promise.all(pollers.map((p) => p.stop()));
  await endPhase();
  await drop();
  const logPaths = pollers.map((p) => p.logPath);
  const errorLines = (await Promise.all(logPaths.map(countLogLines))).reduce((sum, l) => sum + l.errorLines, 0);
  const logs = { jobsFailed: counts.reduce((sum, c) => sum + c.failed, 0), errorLines };
  const report = watchReport({ measured, logs, logPaths, pollShares: null });
  const profile = profileDir ? await profileSummary({ dir: profileDir, who: "the first bare poller" }) : undefined;
  return profile ? { ...report, profile: profile.path } : report;
}
