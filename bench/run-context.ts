import { fork } from "node:child_process";
import { closeSync, mkdtempSync, openSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import type { BenchArgs } from "./args.js";
import { ChildLink } from "./ipc.js";
import { findServices, type Services } from "./meters.js";
import type { PeerStats, PeersApi, PeersReady } from "./peers.js";
import { ADMIN_DATABASE_URL, PG_TARGET, REDIS_URL } from "./stores.js";
import type { Teardown } from "./teardown.js";

/** What both phases share: the arguments, the run's directory, the peers process, the services' pids. */
export interface Run {
  args: BenchArgs;
  /** Logs, the CSV, profiles: kept after the run for whoever wants to look. */
  runDir: string;
  teardown: Teardown;
  peers: ChildLink<PeersApi>;
  peersPid: number;
  ready: PeersReady;
  services: Services;
  /** Aborted by Ctrl-C or SIGTERM; every wait of a phase gives up on it. */
  signal: AbortSignal;
  /** The peers' latest once-a-second figures. */
  latestStats(): PeerStats | undefined;
}

/**
 * Forks a child entry of dist/bench with its output in the run's log file. execArgv is empty
 * so the orchestrator's own flags (an inspector, say) never change what a child costs.
 */
export function forkChild(entry: string, runDir: string, logName: string) {
  const fd = openSync(path.join(runDir, logName), "a");
  const child = fork(path.join(import.meta.dirname, entry), [], { stdio: ["ignore", fd, fd, "ipc"], execArgv: [] });
  closeSync(fd);
  if (child.pid === undefined) throw new Error(`could not start ${entry}`);
  return child;
}

export async function openRun(args: BenchArgs, teardown: Teardown, signal: AbortSignal): Promise<Run> {
  const runDir = mkdtempSync(path.join(tmpdir(), "qrfleet-bench-"));
  process.stderr.write(`bench: logs in ${runDir}\n`);
  const child = forkChild("peers.js", runDir, "peers.log");
  const peers = new ChildLink<PeersApi>(child, "the bench peers process");
  teardown.add("stop the peers process", async () => {
    await peers.call("stop", null, 10_000).catch(() => child.kill("SIGKILL"));
  });
  let latest: PeerStats | undefined;
  peers.on("stats", (s) => void (latest = s as PeerStats));
  const ready = await peers.call("start", { pgLatencyMs: args.pgLatencyMs, pgTarget: PG_TARGET });
  const services = await findServices(ADMIN_DATABASE_URL, REDIS_URL);
  if (services.postmasterPid === null) process.stderr.write("bench: PostgreSQL's process is not visible in /proc; its CPU is reported as null\n");
  if (services.redisPid === null) process.stderr.write("bench: Redis's process is not visible in /proc; its CPU is reported as null\n");
  return { args, runDir, teardown, peers, peersPid: child.pid!, ready, services, signal, latestStats: () => latest };
}

/** Resolves at `at` (Date.now() ms); rejects at once when `signal` aborts. */
export function sleepUntil(at: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason as Error);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason as Error);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, Math.max(0, at - Date.now()));
    signal.addEventListener("abort", onAbort, { once: true });
  });
}
