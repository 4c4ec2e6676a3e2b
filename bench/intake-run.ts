import { randomBytes } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { Queue } from "bullmq";
import { Redis } from "ioredis";
import pg from "pg";
import { QUEUE } from "../src/queues.js";
import { fleetEnv } from "./daemon-phase.js";
import { countLogLines, freePort, spawnDaemon, stopDaemon, waitReady } from "./daemons.js";
import { qrfleetJson } from "./fleet-cli.js";
import type { IntakeArgs } from "./intake-args.js";
import type { IntakeLoadApi, IntakePlan, IntakeProgress } from "./intake-load.js";
import { ChildLink } from "./ipc.js";
import { ProcessMeter, findServices, readServiceCounters, serviceCpuMs } from "./meters.js";
import { summarizeProfileDir } from "./profile.js";
import { forkChild, sleepUntil } from "./run-context.js";
import { ADMIN_DATABASE_URL, REDIS_URL, createScratchDatabase, deleteRedisPrefix, dropScratchDatabase } from "./stores.js";
import type { Teardown } from "./teardown.js";

/**
 * The webhook intake on its own: one daemon as `npm start` runs it, N instances with webhook
 * tokens, and a load generator posting the provider's webhooks at a fixed rate (intake-load.ts).
 * At the end PostgreSQL is asked what it recorded: every instance must hold the newest state sent for it.
 */

const ID_PREFIX = "7302";
const READY_BOUND_MS = 60_000;
const SWEEP_BOUND_MS = 60_000;
const STOP_BOUND_MS = 30_000;
/** Webhooks are posted this long at the rate before anything is measured. */
const WARM_UP_S = 5;

interface Readings {
  cpuMs: number;
  loadCpuMs: number;
  services: ReturnType<typeof serviceCpuMs>;
  counters: ReturnType<typeof readServiceCounters>;
}

export function intakeSettings(args: IntakeArgs) {
  return { mode: "intake", rate: args.rate, seconds: args.seconds, instances: args.instances, unauthenticated: args.unauthenticated, env: args.env };
}

export async function intakeBench(args: IntakeArgs, teardown: Teardown, signal: AbortSignal): Promise<Record<string, unknown>> {
  const runDir = mkdtempSync(path.join(tmpdir(), "qrfleet-bench-"));
  process.stderr.write(`bench: logs in ${runDir}\n`);
  const services = await findServices(ADMIN_DATABASE_URL, REDIS_URL);
  const name = `qrfleet_bench_${randomBytes(4).toString("hex")}`;
  const databaseUrl = await createScratchDatabase(name);
  teardown.add(`drop database ${name}`, () => dropScratchDatabase(name));
  teardown.add(`delete Redis keys ${name}:*`, () => deleteRedisPrefix(name));
  // The instances point at a port nobody listens on: the sweep's polls and the sessions' sockets
  // fail at once and record nothing, so every state in PostgreSQL came from a webhook.
  const nowhere = `http://127.0.0.1:${await freePort()}`;
  const env = fleetEnv(
    { windowMs: 100_000, rotateMs: 20_000, env: { QRFLEET_SWEEP_INTERVAL_MS: "3600000", QRFLEET_SWEEP_SPREAD_MS: "0", ...args.env } },
    { databaseUrl, prefix: name, smtpUrl: "smtp://127.0.0.1:9" },
  );
  const cli = <T>(argv: string[]) => qrfleetJson<T>(argv, env, { cwd: runDir, timeoutMs: 600_000, signal });
  await cli(["migrate"]);
  const instances = Array.from({ length: args.instances }, (_, i) => ({
    idInstance: `${ID_PREFIX}${String(i).padStart(6, "0")}`,
    token: randomBytes(16).toString("hex"),
    hookToken: `hook-${randomBytes(16).toString("hex")}`,
  }));
  const csv = path.join(runDir, "instances.csv");
  await writeFile(csv, ["apiUrl,idInstance,token,webhookToken", ...instances.map((i) => `${nowhere},${i.idInstance},${i.token},${i.hookToken}`)].join("\n") + "\n");
  await cli(["instance", "import", csv]);

  const profileDir = args.profile ? path.join(runDir, "profile") : null;
  const daemon = await spawnDaemon(0, { env, runDir, profile: profileDir ? { index: 0, dir: profileDir } : null });
  const stop = teardown.add("stop the daemon", () => stopDaemon(daemon, STOP_BOUND_MS));
  await waitReady([daemon], READY_BOUND_MS, signal);
  await startupSweepDone(name, signal);

  const child = forkChild("intake-load.js", runDir, "load.log");
  const load = new ChildLink<IntakeLoadApi>(child, "the load generator");
  teardown.add("stop the load generator", async () => void (await load.call("stop", null, 5_000).catch(() => child.kill("SIGKILL"))));
  const meter = new ProcessMeter();
  meter.add(daemon.pid);
  const loadMeter = new ProcessMeter();
  loadMeter.add(child.pid!);
  load.on("progress", progressLine(meter, Date.now()));
  // Figures start when the warm-up ends: the CPU of what is measured, not of filling pools and caches.
  const measuring: { start?: Readings } = {};
  load.on("measuring", () => {
    measuring.start = { cpuMs: meter.read().cpuMs, loadCpuMs: loadMeter.read().cpuMs, services: serviceCpuMs(services), counters: readServiceCounters(ADMIN_DATABASE_URL, REDIS_URL) };
  });
  const plan: IntakePlan = {
    url: `http://127.0.0.1:${daemon.port}`,
    instances: instances.map(({ idInstance, hookToken }) => ({ idInstance, hookToken })),
    rate: args.rate,
    unauthenticatedRate: args.unauthenticated,
    warmUpSeconds: WARM_UP_S,
    seconds: args.seconds,
  };
  const result = await Promise.race([load.call("run", plan, (WARM_UP_S + args.seconds) * 1000 + 60_000), aborted(signal)]);
  const s0 = measuring.start;
  if (!s0) throw new Error("the load generator never ended its warm-up");
  const daemonCpuMs = meter.read().cpuMs - s0.cpuMs;
  const loadCpuMs = loadMeter.read().cpuMs - s0.loadCpuMs;
  const services0 = s0.services;
  const services1 = serviceCpuMs(services);
  const [counters0, counters1] = await Promise.all([s0.counters, readServiceCounters(ADMIN_DATABASE_URL, REDIS_URL)]);
  const recorded = await recordedStates(databaseUrl);

  await stop();
  const logs = await countLogLines(daemon.logPath);
  const profile = profileDir ? await summarizeProfileDir(profileDir).catch((err: Error) => void process.stderr.write(`bench: no profile: ${err.message}\n`)) : undefined;
  if (profile) process.stderr.write(`\nCPU profile of the daemon by package (${profile.path}):\n${profile.groups}\n\n`);

  const lost = instances.filter((inst, i) => result.expected[i] !== null && recorded.states.get(inst.idInstance) !== result.expected[i]).length;
  const per = (ms: number | null) => (ms === null || result.answered200 === 0 ? null : Math.round((ms / result.answered200) * 1000) / 1000);
  const postgresCpuMs = services1.postgres === null || services0.postgres === null ? null : services1.postgres - services0.postgres;
  const transactions = counters0 && counters1 ? counters1.postgresTransactions - counters0.postgresTransactions : null;
  const { expected: _expected, ...figures } = result;
  return {
    ...intakeSettings(args),
    intake: {
      ...figures,
      lost,
      cpuMsPerWebhook: { daemon: per(daemonCpuMs), postgres: per(postgresCpuMs) },
      cpuMs: { daemon: Math.round(daemonCpuMs), postgres: postgresCpuMs === null ? null : Math.round(postgresCpuMs), load: Math.round(loadCpuMs) },
      postgresTransactionsPerWebhook: per(transactions),
      sessions: recorded.sessions,
      errorLines: logs.errorLines,
      logs: [daemon.logPath],
    },
    ...(profile && { profile: profile.path }),
  };
}

/** The start-up sweep polls every instance (and fails: they point nowhere); the load starts once it is over. */
async function startupSweepDone(prefix: string, signal: AbortSignal): Promise<void> {
  const connection = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  const sweep = new Queue(QUEUE.sweep, { connection, prefix });
  const deadline = Date.now() + SWEEP_BOUND_MS;
  try {
    for (;;) {
      const counts = await sweep.getJobCounts("waiting", "active", "prioritized", "delayed");
      const busy = (counts.waiting ?? 0) + (counts.active ?? 0) + (counts.prioritized ?? 0);
      if (busy === 0 || Date.now() > deadline) return;
      await sleepUntil(Date.now() + 200, signal);
    }
  } finally {
    await sweep.close();
    connection.disconnect();
  }
}

function aborted(signal: AbortSignal): Promise<never> {
  return new Promise((_, reject) => {
    if (signal.aborted) return reject(signal.reason as Error);
    signal.addEventListener("abort", () => reject(signal.reason as Error), { once: true });
  });
}

async function recordedStates(databaseUrl: string): Promise<{ states: Map<string, string | null>; sessions: number }> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const { rows } = await client.query<{ idInstance: string; lastState: string | null }>(`SELECT "idInstance", "lastState" FROM "Instance"`);
    const sessions = await client.query<{ n: number }>(`SELECT count(*)::int AS n FROM "QrSession"`);
    return { states: new Map(rows.map((r) => [r.idInstance, r.lastState])), sessions: sessions.rows[0]!.n };
  } finally {
    await client.end();
  }
}

function progressLine(meter: ProcessMeter, t0: number) {
  let previous: { at: number; cpuMs: number; answered: number } | null = null;
  return (value: unknown) => {
    const p = value as IntakeProgress;
    const now = Date.now();
    const { cpuMs } = meter.read();
    if (previous) {
      const s = (now - previous.at) / 1000;
      process.stderr.write(
        `[intake] t=${String(Math.round((now - t0) / 1000)).padStart(4)}s answered/s=${((p.answered - previous.answered) / s).toFixed(0).padStart(6)} ` +
          `in flight=${String(p.inFlight).padStart(5)} refused=${String(p.refused).padStart(7)} cpu=${(((cpuMs - previous.cpuMs) / (now - previous.at)) * 100).toFixed(0).padStart(4)}%\n`,
      );
    }
    previous = { at: now, cpuMs, answered: p.answered };
  };
}
