import { fork } from "node:child_process";
import { randomBytes } from "node:crypto";
import { closeSync, mkdtempSync, openSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import type { BenchArgs } from "./args.js";
import { ChildLink, type Api } from "./ipc.js";
import { findServices, type ProcessMeter, type Services } from "./meters.js";
import type { PeerStats, PeersApi, PeersReady } from "./peers.js";
import { ADMIN_DATABASE_URL, PG_TARGET, REDIS_URL, createScratchDatabase, dropScratchDatabase, throughProxy } from "./stores.js";
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
 * Forks a child entry of dist/bench with its output in the run's log file. Its node flags are
 * `execArgv` only, so the orchestrator's own (an inspector, say) never change what a child costs.
 */
export function forkChild(entry: string, runDir: string, logName: string, execArgv: string[] = []) {
  const fd = openSync(path.join(runDir, logName), "a");
  const child = fork(path.join(import.meta.dirname, entry), [], { stdio: ["ignore", fd, fd, "ipc"], execArgv });
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

export interface MeasuredChild<A extends Api<A>> {
  link: ChildLink<A>;
  pid: number;
  logPath: string;
  /** Rejects if the child exits before stop() was called. */
  died: Promise<never>;
  /** Asks the child to stop (10 s), then SIGKILL. */
  stop(): Promise<void>;
}

/**
 * A forked child the phase measures (the bare client, the bare poller): added to `meter` from its
 * start, kept there once it exits, and registered for stopping the moment it exists.
 */
export function forkMeasuredChild<A extends Api<A> & { stop(arg: null): unknown }>(
  run: Run,
  entry: string,
  name: string,
  meter: ProcessMeter,
  { logName = entry.replace(/\.js$/, ".log"), execArgv = [] }: { logName?: string; execArgv?: string[] } = {},
): MeasuredChild<A> {
  const child = forkChild(entry, run.runDir, logName, execArgv);
  const link = new ChildLink<A>(child, name);
  const logPath = path.join(run.runDir, logName);
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  void exited.then(() => meter.retire(child.pid!));
  meter.add(child.pid!);
  let stopping = false;
  const stop = run.teardown.add(`stop ${name}`, async () => {
    stopping = true;
    const asked = link.call("stop", null as Parameters<A["stop"]>[0], 10_000).catch(() => undefined);
    await Promise.race([asked.then(() => exited), new Promise((r) => setTimeout(r, 12_000))]);
    child.kill("SIGKILL");
  });
  const died = exited.then(() => {
    if (!stopping) throw new Error(`${name} exited during the run (see ${logPath})`);
    return new Promise<never>(() => undefined);
  });
  died.catch(() => undefined);
  return { link, pid: child.pid!, logPath, died, stop };
}

/** A fresh `qrfleet_bench_<tag>` database (through the delay proxy when there is one), dropped at the end of the run at the latest. */
export async function scratchDatabase(run: Run): Promise<{ tag: string; name: string; databaseUrl: string; drop(): Promise<void> }> {
  const tag = randomBytes(4).toString("hex");
  const name = `qrfleet_bench_${tag}`;
  const databaseUrl = throughProxy(await createScratchDatabase(name), run.ready.pgProxyPort);
  const drop = run.teardown.add(`drop database ${name}`, () => dropScratchDatabase(name));
  return { tag, name, databaseUrl, drop };
}
