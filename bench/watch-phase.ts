import path from "node:path";
import { addWebhookOperator, importCsv, openFleetStore, profileSummary, sumLogs } from "./daemon-phase.js";
import { spawnFleet, waitReady } from "./daemons.js";
import { pollShares, sweepPolls } from "./daemon-metrics.js";
import type { Run } from "./run-context.js";
import { importCsvChunks, watchInstances, type FleetSpec } from "./watch-fleet.js";
import { watchReport, type WatchReport } from "./watch-report.js";
import { WatchWindow } from "./watch-window.js";

/** Ids 7304…: never those of the watch floor (7303…) nor of the QR run's phases. */
const WATCH_ID_PREFIX = "7304";
const STOP_BOUND_MS = 30_000;
const READY_BOUND_MS = 120_000;
/** The simulator defines every instance (100,000 with their tokens: seconds). */
const PHASE_BOUND_MS = 120_000;

/**
 * The daemons' steady state: N linked instances imported through the CLI, K daemons sweeping them
 * every interval; from readiness, one interval of warm-up, then the measured window until
 * readiness + S, in which M instances are logged out over one interval.
 */
export async function watchDaemonPhase(run: Run): Promise<WatchReport & { profile?: string }> {
  const { args, teardown } = run;
  const watch = args.watch!;
  const store = await openFleetStore(run);
  const fleet: FleetSpec = { count: watch.instances, idPrefix: WATCH_ID_PREFIX, seed: store.tag, webhookTokens: watch.providerWebhooks };
  const phase = { path: "/daemon", fleet, stateLatencyMs: watch.providerLatencyMs, rotateMs: args.rotateMs, windowMs: args.windowMs };
  const { simUrl } = await run.peers.call("watchPhase", phase, PHASE_BOUND_MS);
  const endPhase = teardown.add("end the daemon phase", () => run.peers.call("endPhase", null));
  await importCsv(run, store, "instances", importCsvChunks(watchInstances(fleet), simUrl));
  await addWebhookOperator(run, store, "/daemon");

  const profiled = args.profile ? { index: 0, dir: path.join(run.runDir, "profile") } : null;
  const t0 = Date.now();
  const window = new WatchWindow(run, "daemon", t0);
  const daemons = await spawnFleet(args.daemons, { env: store.env, runDir: run.runDir, profile: profiled, teardown, meter: window.meter, stopBoundMs: STOP_BOUND_MS });
  const hooks = watch.providerWebhooks ? daemons.daemons.map((d) => `http://127.0.0.1:${d.port}/hooks/greenapi`) : [];
  await run.peers.call("watchStart", { at: t0, webhookTargets: hooks });
  await Promise.race([waitReady(daemons.daemons, READY_BOUND_MS, run.signal), daemons.died]);
  // Start-up is not what this run measures: its seconds count from readiness.
  const readyAt = window.markReady();
  const windowAt = readyAt + watch.sweepIntervalMs;
  const deadline = readyAt + args.seconds * 1000;

  const metrics = () => Promise.all(daemons.daemons.map((d) => sweepPolls(d.port, store.env.QRFLEET_ADMIN_TOKEN!)));
  await window.open(windowAt, { count: watch.logouts, spreadMs: watch.sweepIntervalMs }, daemons.died);
  const polls0 = await metrics();
  let polls1: Array<number | null> = [];
  const measured = await window.until(deadline, daemons.died, async () => (polls1 = await metrics()));
  const shares = pollShares(polls0, polls1);

  await daemons.stop();
  const logs = await sumLogs(daemons.daemons);
  const profile = await profileSummary(profiled && { dir: profiled.dir, who: "daemon 1" });
  await endPhase();
  await store.dropDatabase();
  await store.deleteKeys();
  const report = watchReport({ measured, logs, logPaths: daemons.daemons.map((d) => d.logPath), pollShares: shares });
  return profile ? { ...report, profile: profile.path } : report;
}
