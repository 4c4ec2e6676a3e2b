import { spawn, type ChildProcess } from "node:child_process";
import { createReadStream, openSync, closeSync, readFileSync } from "node:fs";
import { createServer } from "node:net";
import path from "node:path";
import { createInterface } from "node:readline";
import { PROJECT_ROOT } from "../src/paths.js";
import type { ProcessMeter } from "./meters.js";
import { cpuProfileFlags } from "./profile.js";
import type { Teardown } from "./teardown.js";

/** The daemons under test: `node <flags> dist/workers/main.js`, as `npm start` runs it, one OS process each. */

export const DAEMON_ENTRY = path.join(PROJECT_ROOT, "dist", "workers", "main.js");

/** The node flags of package.json's start script: the bench measures the daemon as it is run. */
export function startScriptFlags(script: string): string[] {
  const m = /\bexec node ((?:--\S+ )*)dist\/workers\/main\.js$/.exec(script);
  if (!m) throw new Error(`package.json's start script does not read "… exec node [--flag …] dist/workers/main.js": ${script}`);
  return m[1]!.split(" ").filter(Boolean);
}

const DAEMON_NODE_FLAGS = startScriptFlags((JSON.parse(readFileSync(path.join(PROJECT_ROOT, "package.json"), "utf8")) as { scripts: { start: string } }).scripts.start);

export interface DaemonProcess {
  index: number;
  pid: number;
  port: number;
  logPath: string;
  child: ChildProcess;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Set when the bench itself ended it, so its exit is no surprise. */
  stopping: boolean;
}

/** A port free on 127.0.0.1 now; the daemon binds it a moment later. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

export interface SpawnOptions {
  env: Record<string, string>;
  runDir: string;
  /** CPU-profile this daemon (by index) into profileDir. */
  profile: { index: number; dir: string } | null;
}

export async function spawnDaemon(index: number, opts: SpawnOptions): Promise<DaemonProcess> {
  const port = await freePort();
  const logPath = path.join(opts.runDir, `daemon-${index + 1}.log`);
  const fd = openSync(logPath, "a");
  const flags = opts.profile?.index === index ? cpuProfileFlags(opts.profile.dir) : [];
  // Its own process group: Ctrl-C on the bench must not reach it before the bench decides to stop it.
  // The working directory is the run's, so no .env of the checkout changes what is measured.
  const child = spawn(process.execPath, [...DAEMON_NODE_FLAGS, ...flags, DAEMON_ENTRY], {
    cwd: opts.runDir,
    env: { ...opts.env, PORT: String(port) },
    stdio: ["ignore", fd, fd],
    detached: true,
  });
  closeSync(fd);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("exit", (code, signal) => resolve({ code, signal })),
  );
  if (child.pid === undefined) throw new Error(`daemon ${index + 1} could not be started (see ${logPath})`);
  return { index, pid: child.pid, port, logPath, child, exited, stopping: false };
}

export interface Fleet {
  daemons: DaemonProcess[];
  /** Rejects when a daemon exits that the bench did not stop, with the end of its log. */
  died: Promise<never>;
  /** Stops every daemon still running (SIGTERM, SIGKILL after the bound). */
  stop(): Promise<void>;
}

export interface FleetOptions extends SpawnOptions {
  teardown: Teardown;
  /** Measures every daemon; keeps a daemon's CPU once it has exited. */
  meter: ProcessMeter;
  stopBoundMs: number;
}

/** K daemons, each measured from its start and registered for stopping the moment it exists. */
export async function spawnFleet(count: number, opts: FleetOptions): Promise<Fleet> {
  const daemons: DaemonProcess[] = [];
  const stops: Array<() => Promise<void>> = [];
  let unexpected: (err: Error) => void = () => undefined;
  const died = new Promise<never>((_, reject) => (unexpected = reject));
  died.catch(() => undefined);
  for (let k = 0; k < count; k += 1) {
    const d = await spawnDaemon(k, opts);
    daemons.push(d);
    opts.meter.add(d.pid);
    stops.push(opts.teardown.add(`stop daemon ${k + 1}`, () => stopDaemon(d, opts.stopBoundMs)));
    void d.exited.then(async ({ code, signal }) => {
      opts.meter.retire(d.pid);
      if (d.stopping) return;
      unexpected(new Error(`daemon ${k + 1} exited during the run (${signal ?? `code ${code}`}); its log ends:\n${await logTail(d.logPath)}`));
    });
  }
  return { daemons, died, stop: async () => void (await Promise.all(stops.map((stop) => stop()))) };
}

/** Resolves once every daemon answers GET /readyz with 200 (PostgreSQL and Redis reachable). */
export async function waitReady(daemons: DaemonProcess[], boundMs: number, signal: AbortSignal): Promise<void> {
  const deadline = Date.now() + boundMs;
  for (const d of daemons) {
    for (;;) {
      signal.throwIfAborted();
      if (d.child.exitCode !== null || d.child.signalCode !== null) throw new Error(`daemon ${d.index + 1} exited before it was ready (see ${d.logPath})`);
      const status = await fetch(`http://127.0.0.1:${d.port}/readyz`, { signal: AbortSignal.timeout(2_000) }).then((r) => r.status, () => 0);
      if (status === 200) break;
      if (Date.now() > deadline) throw new Error(`daemon ${d.index + 1} was not ready within ${boundMs / 1000} s (see ${d.logPath})`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

/** SIGTERM, then SIGKILL after `boundMs`: the daemon's own shutdown is bounded, this bounds it again. */
export async function stopDaemon(d: DaemonProcess, boundMs: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  d.stopping = true;
  if (d.child.exitCode === null && d.child.signalCode === null) d.child.kill("SIGTERM");
  let timer: NodeJS.Timeout | undefined;
  const killed = new Promise<void>((resolve) => {
    timer = setTimeout(() => {
      d.child.kill("SIGKILL");
      resolve();
    }, boundMs);
  });
  await Promise.race([d.exited, killed]);
  clearTimeout(timer);
  return d.exited;
}

export interface LogCounts {
  /** Lines of BullMQ jobs that failed (`"msg":"job failed"`). */
  jobsFailed: number;
  /** Lines at level error or fatal (pino 50, 60). */
  errorLines: number;
}

/** Counted after the process exited, so the log is complete. */
export async function countLogLines(logPath: string): Promise<LogCounts> {
  const counts: LogCounts = { jobsFailed: 0, errorLines: 0 };
  const lines = createInterface({ input: createReadStream(logPath), crlfDelay: Infinity });
  for await (const line of lines) {
    if (line.includes('"msg":"job failed"')) counts.jobsFailed += 1;
    if (/"level":(50|60)\b/.test(line)) counts.errorLines += 1;
  }
  return counts;
}

/** The last lines of a log, for an error message about a daemon that died. */
export async function logTail(logPath: string, lines = 5): Promise<string> {
  const all: string[] = [];
  for await (const line of createInterface({ input: createReadStream(logPath), crlfDelay: Infinity })) {
    all.push(line);
    if (all.length > lines) all.shift();
  }
  return all.join("\n");
}
