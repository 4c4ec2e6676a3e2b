import { randomBytes } from "node:crypto";
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { generateInstances } from "../src/simulator/index.js";
import type { BenchArgs } from "./args.js";
import { countLogLines, spawnFleet, waitReady, type DaemonProcess, type LogCounts } from "./daemons.js";
import { qrfleetJson } from "./fleet-cli.js";
import { MeasuredWindow } from "./phase.js";
import { phaseReport, type PhaseReport } from "./phase-report.js";
import { summarizeProfileDir } from "./profile.js";
import { scratchDatabase, type Run } from "./run-context.js";
import { REDIS_URL, deleteRedisPrefix } from "./stores.js";

const DAEMON_ID_PREFIX = "7302";
/** The daemon's own shutdown is bounded by its grace period plus a few seconds; this bounds it again. */
const STOP_BOUND_MS = 30_000;
const READY_BOUND_MS = 60_000;
/** The import seals every token; 10,000 rows take a while on a busy machine. */
const IMPORT_BOUND_MS = 600_000;

/** Keys the fleet reads; inherited values are dropped so only what the bench sets (and --env) is measured. */
const FLEET_KEYS = /^(QRFLEET_|SMTP_|DATABASE_URL$|REDIS_URL$|PORT$|HOST$|LOG_LEVEL$)/;

export function fleetEnv(args: Pick<BenchArgs, "windowMs" | "rotateMs" | "env"> & Partial<Pick<BenchArgs, "emailMode">>, run: { databaseUrl: string; prefix: string; smtpUrl: string }): Record<string, string> {
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([k, v]) => v !== undefined && !FLEET_KEYS.test(k))) as Record<string, string>;
  return {
    ...inherited,
    DATABASE_URL: run.databaseUrl,
    REDIS_URL,
    QRFLEET_REDIS_PREFIX: run.prefix,
    QRFLEET_SECRET_KEY: randomBytes(32).toString("base64"),
    QRFLEET_ADMIN_TOKEN: randomBytes(24).toString("hex"),
    SMTP_URL: run.smtpUrl,
    HOST: "127.0.0.1",
    LOG_LEVEL: "warn",
    // The fake provider and the bench's receiver listen on loopback.
    QRFLEET_ALLOW_PRIVATE_PROVIDER: "true",
    QRFLEET_ALLOW_PRIVATE_WEBHOOKS: "true",
    QRFLEET_SCAN_WINDOW_MS: String(args.windowMs),
    // Frames come every rotate-ms: silence is only a fault after three of them go missing.
    QRFLEET_SILENCE_MS: String(Math.max(45_000, 3 * args.rotateMs)),
    QRFLEET_ATTEMPT_MAX_MS: String(args.windowMs + 30_000),
    // A phase lasts minutes: digests come every 30 s, so a run sees them (the defaults are 2 and 10 min).
    QRFLEET_DIGEST_WINDOW_MS: "15000",
    QRFLEET_DIGEST_INTERVAL_MS: "30000",
    // A run is a mass logout: storm control would turn the immediate email operator to digests a few seconds in.
    ...(args.emailMode === "immediate" && { QRFLEET_STORM_CHANNEL_PER_MINUTE: "1000000000" }),
    ...args.env,
  };
}

export interface FleetStore {
  /** Random hex naming the database, the Redis prefix and the instances' tokens. */
  tag: string;
  env: Record<string, string>;
  cli<T>(argv: string[], timeoutMs?: number): Promise<T>;
  dropDatabase(): Promise<void>;
  deleteKeys(): Promise<void>;
}

/** A fresh database (migrated by `qrfleet migrate`) and Redis prefix, both removed at the end, and the CLI with their environment. */
export async function openFleetStore(run: Run): Promise<FleetStore> {
  const { tag, name, databaseUrl, drop: dropDatabase } = await scratchDatabase(run);
  const deleteKeys = run.teardown.add(`delete Redis keys ${name}:*`, () => deleteRedisPrefix(name));
  const env = fleetEnv(run.args, { databaseUrl, prefix: name, smtpUrl: run.ready.smtpUrl });
  const cli = <T>(argv: string[], timeoutMs?: number) => qrfleetJson<T>(argv, env, { cwd: run.runDir, timeoutMs, signal: run.signal });
  await cli(["migrate"]);
  return { tag, env, cli, dropDatabase, deleteKeys };
}

/** `qrfleet instance import` of each CSV text in turn (written to the run's directory as `<name>-<n>.csv`). */
export async function importCsv(run: Run, store: FleetStore, name: string, chunks: readonly string[]): Promise<void> {
  for (const [n, text] of chunks.entries()) {
    const file = path.join(run.runDir, chunks.length === 1 ? `${name}.csv` : `${name}-${n + 1}.csv`);
    await writeFile(file, text);
    await store.cli(["instance", "import", file], IMPORT_BOUND_MS);
  }
}

/** The operator whose webhook is the receiver's `channel`; the receiver learns its signing secret. */
export async function addWebhookOperator(run: Run, store: FleetStore, channel: string): Promise<void> {
  const hooks = await store.cli<{ webhookSecret: string | null }>(["operator", "add", "--name", "bench-webhooks", "--webhook", `${run.ready.receiverUrl}${channel}`]);
  if (!hooks.webhookSecret) throw new Error("qrfleet operator add --webhook printed no webhookSecret");
  await run.peers.call("trust", { path: channel, secret: hooks.webhookSecret });
}

/** The daemon as a user runs it: a fresh database, the CLI to fill it, K daemon processes, the sweep (or enqueue) to start. */
export async function daemonPhase(run: Run): Promise<PhaseReport & { profile?: string }> {
  const { args, teardown } = run;
  const store = await openFleetStore(run);
  const { cli } = store;
  const instances = generateInstances(args.sessions, { idPrefix: DAEMON_ID_PREFIX, seed: store.tag });
  const { simUrl } = await run.peers.call("phase", { path: "/daemon", instances, rotateMs: args.rotateMs, windowMs: args.windowMs });
  const endPhase = teardown.add("end the daemon phase", () => run.peers.call("endPhase", null));
  await importCsv(run, store, "instances", [["apiUrl,idInstance,token", ...instances.map((i) => `${simUrl},${i.idInstance},${i.token}`)].join("\n") + "\n"]);
  await addWebhookOperator(run, store, "/daemon");
  const mail = await cli<{ operator: { channels: Array<{ id: string }> } }>(["operator", "add", "--name", "bench-email", "--email", "ops@bench.invalid"]);
  if (args.emailMode === "immediate") await cli(["operator", "channel-mode", mail.operator.channels[0]!.id, "immediate"]);

  // V8 writes the profile when the process exits: a daemon that --kill-after kills never does, so profile the next one.
  const profiled = args.profile ? { index: args.killAfter === null ? 0 : 1, dir: path.join(run.runDir, "profile") } : null;
  const t0 = Date.now();
  const window = new MeasuredWindow(run, "daemon", t0);
  const fleet = await spawnFleet(args.daemons, { env: store.env, runDir: run.runDir, profile: profiled, teardown, meter: window.meter, stopBoundMs: STOP_BOUND_MS });
  const { daemons, died } = fleet;

  let killedAfter: number | undefined;
  const killTimer = args.killAfter === null ? undefined : setTimeout(() => {
    const first = daemons[0]!;
    first.stopping = true;
    window.meter.read(); // its CPU until now; /proc forgets it once it is reaped
    first.child.kill("SIGKILL");
    window.markKill(Date.now());
    killedAfter = (Date.now() - t0) / 1000;
    process.stderr.write(`[daemon] SIGKILL sent to daemon 1 (pid ${first.pid}) at t=${killedAfter.toFixed(1)}s\n`);
  }, t0 + args.killAfter * 1000 - Date.now());

  const ready = waitReady(daemons, READY_BOUND_MS, run.signal).then(() => window.markReady());
  if (args.start === "enqueue") {
    await Promise.race([ready, died]);
    await Promise.race([cli(["enqueue", "--all-unlinked"]), died]).catch((err: Error) => {
      throw new Error(`--start enqueue: ${err.message}`);
    });
  }
  // In sweep mode readiness is only observed; a daemon that never gets ready shows as nothing delivered.
  ready.catch(() => undefined);
  const measured = await window.until(t0 + args.seconds * 1000, died).finally(() => clearTimeout(killTimer));

  await fleet.stop();
  const logs = await sumLogs(daemons);
  const profile = await profileSummary(profiled && { dir: profiled.dir, who: `daemon ${profiled.index + 1}` });
  await endPhase();
  await store.dropDatabase();
  await store.deleteKeys();
  const report = phaseReport({ args, t0, measured, logs, logPaths: daemons.map((d) => d.logPath), killedAfter });
  return profile ? { ...report, profile: profile.path } : report;
}

/** The profiled process's summary, printed on stderr; undefined when none was asked or none was written. */
export async function profileSummary(profiled: { dir: string; who: string } | null): Promise<{ path: string } | undefined> {
  if (!profiled) return undefined;
  const profile = await summarizeProfileDir(profiled.dir, profiled.who).catch((err: Error) => void process.stderr.write(`bench: no profile: ${err.message}\n`));
  if (profile) process.stderr.write(`\nCPU profile of ${profiled.who} by package (${profile.path}):\n${profile.groups}\n\n`);
  return profile ?? undefined;
}

export async function sumLogs(daemons: DaemonProcess[]): Promise<LogCounts> {
  const all = await Promise.all(daemons.map((d) => countLogLines(d.logPath)));
  return all.reduce((a, b) => ({ jobsFailed: a.jobsFailed + b.jobsFailed, errorLines: a.errorLines + b.errorLines }), { jobsFailed: 0, errorLines: 0 });
}
