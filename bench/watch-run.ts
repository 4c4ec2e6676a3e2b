import type { BenchArgs } from "./args.js";
import type { Run } from "./run-context.js";
import { watchFloorPhase } from "./watch-floor.js";
import { watchDaemonPhase } from "./watch-phase.js";
import { watchRatios } from "./watch-report.js";

/** The settings a watch run's JSON line starts with. */
export function watchSettings(args: BenchArgs) {
  const w = args.watch!;
  return {
    watch: w.instances,
    providerLatencyMs: w.providerLatencyMs,
    sweepIntervalMs: w.sweepIntervalMs,
    logouts: w.logouts,
    providerWebhooks: w.providerWebhooks,
    floorProcesses: w.floorProcesses,
    seconds: args.seconds,
    daemons: args.daemons,
    rotateMs: args.rotateMs,
    windowMs: args.windowMs,
    pgLatencyMs: args.pgLatencyMs,
    env: args.env,
  };
}

/** --watch: the bare poller first (with --floor), then the daemons; their blocks and ratios. */
export async function watchRun(run: Run): Promise<Record<string, unknown>> {
  const floorRun = run.args.floor ? await watchFloorPhase(run) : undefined;
  const { profile, ...daemon } = await watchDaemonPhase(run);
  if (!floorRun) return { daemon, ...(profile && { profile }) };
  const { profile: floorProfile, ...floor } = floorRun;
  return { daemon, floor, ratios: watchRatios(daemon, floor), ...(profile && { profile }), ...(floorProfile && { floorProfile }) };
}
