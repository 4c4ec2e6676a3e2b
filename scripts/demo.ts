import path from "node:path";
import { pino } from "pino";
import { ConfigError, loadConfig, type Config } from "../src/config.js";
import { openFleet } from "../src/wiring/runtime.js";
import { createLogger, maskSecrets, type Logger } from "../src/log.js";
import { liveUrl, signLiveToken } from "../src/notify/live-link.js";
import { PROJECT_ROOT } from "../src/paths.js";
import { startSimulator } from "../src/simulator/index.js";
import { startDaemon, type Daemon } from "../workers/daemon.js";
import { DEMO_DATABASE_URL, DEMO_REDIS_PREFIX, demoEnvironment, writeCliEnv } from "./demo/environment.js";
import {
  OPERATOR_EMAIL, OPERATOR_NAME, STORM_FLEET, STORM_OPERATOR, enqueueDemoSessions, resetDemoFleet, seedDemoFleet, simulatorOptions, startDemoStorm,
  type SeededInstance,
} from "./demo/fleet.js";
import { startMailCatcher } from "./demo/mail-catcher.js";
import { mailLine, narrate, webhookLine } from "./demo/narrator.js";
import { ensureDatabase, preflight } from "./demo/preflight.js";
import { startWebhookSink } from "./demo/webhook-sink.js";

/**
 * `npm run demo`: the daemon against a simulated GREEN-API fleet, with a local mail catcher and
 * webhook receiver, on localhost. Needs only PostgreSQL and Redis; says what to start if either
 * is missing. Ctrl-C stops everything; a second Ctrl-C exits at once.
 */

const DEMO_DIR = path.join(PROJECT_ROOT, ".demo");
const LIVE_LINK_TTL_MS = 24 * 3600_000;
// Every part closes within its own bound; this one catches a close that hangs anyway.
const SHUTDOWN_BOUND_MS = 20_000;
const DEFAULT_REDIS_URL = "redis://127.0.0.1:6379";

const shown = (p: string) => path.relative(process.cwd(), p) || ".";
const say = (text = "") => process.stdout.write(text + "\n");

/** What was started, closed in reverse order: the daemon first, while its peers are still there. */
const closers: Array<{ name: string; close: () => Promise<void> }> = [];
const unsubscribes: Array<() => void> = [];
/** Lines that happen before the banner is printed wait for it. */
const held: string[] = [];
let bannerShown = false;
const hold = (line: string) => (bannerShown ? say(line) : void held.push(line));
let log: Logger | null = null;
let stopping = false;

async function stop(signal: string, code = 0): Promise<never> {
  if (stopping) {
    say(`\n${signal} again: exiting now without waiting.`);
    process.exit(130);
  }
  stopping = true;
  if (signal) say(`\n${signal}: stopping the daemon, the simulator, the mail catcher and the webhook sink…`);
  for (const unsubscribe of unsubscribes) unsubscribe();
  setTimeout(() => {
    say(`shutdown took longer than ${SHUTDOWN_BOUND_MS / 1000} s: exiting anyway.`);
    process.exit(1);
  }, SHUTDOWN_BOUND_MS).unref();
  for (const part of closers.reverse()) {
    await part.close().catch((err: unknown) => say(`  could not close the ${part.name}: ${maskSecrets(String((err as Error)?.message ?? err))}`));
  }
  await new Promise<void>((resolve) => (log ? log.flush(() => resolve()) : resolve()));
  if (code === 0) say(`Demo stopped. Mail stays in ${shown(path.join(DEMO_DIR, "mail"))}; \`npm run demo\` starts the story again.`);
  process.exit(code);
}

async function main(): Promise<void> {
  process.on("SIGINT", () => void stop("SIGINT"));
  process.on("SIGTERM", () => void stop("SIGTERM"));

  // Only these two come from the caller's environment unasked; everything else is the demo's.
  const databaseUrl = process.env.DATABASE_URL || DEMO_DATABASE_URL;
  const redisUrl = process.env.REDIS_URL || DEFAULT_REDIS_URL;
  const problems = await preflight(databaseUrl, redisUrl);
  if (problems.length > 0) {
    for (const p of problems) process.stderr.write(`${p}\n`);
    process.exit(1);
  }
  const database = await ensureDatabase(databaseUrl);
  await resetDemoFleet(databaseUrl, redisUrl, DEMO_REDIS_PREFIX);

  const catcher = await startMailCatcher({ dir: path.join(DEMO_DIR, "mail"), onMail: (m) => hold(mailLine(m)) });
  closers.push({ name: "mail catcher", close: () => catcher.close() });
  const sink = await startWebhookSink({ keep: 100, onWebhook: (w) => hold(webhookLine(w)) });
  closers.push({ name: "webhook sink", close: () => sink.close() });

  const { env, portMoved } = await demoEnvironment(process.env, DEMO_DIR, { databaseUrl, redisUrl, smtpUrl: catcher.smtpUrl });
  const config = loadConfig(env);
  const logFile = path.join(DEMO_DIR, "daemon.log");
  log = createLogger({ level: config.LOG_LEVEL, name: "qrfleet-demo", destination: pino.destination({ dest: logFile, sync: false, mkdir: true, append: false }) });

  const sim = await startSimulator({ ...simulatorOptions(), log });
  closers.push({ name: "simulator", close: () => sim.close() });

  // Seeded and enqueued before the daemon starts: its first fleet sweep runs at once, and would
  // otherwise start these sessions itself (trigger "sweep") before the admin enqueue below.
  const seeding = openFleet(config, log);
  const ownDatabase = database.name === new URL(DEMO_DATABASE_URL).pathname.slice(1);
  const seeded = await (async () => {
    const { instances, webhookSecret } = await seedDemoFleet(seeding, sim.url, sink.url);
    sink.setSecret(webhookSecret);
    unsubscribes.push(narrate(seeding, names(instances), hold));
    await enqueueDemoSessions(seeding, instances);
    if (ownDatabase) await startDemoStorm(seeding, sim.url);
    return instances;
  })().finally(() => seeding.close());

  if (stopping) return; // Ctrl-C while starting: do not start the daemon only to stop it
  const daemon = await startDaemon(config, log);
  closers.push({ name: "daemon", close: () => daemon.close() });
  unsubscribes.push(narrate(daemon.ctx, names(seeded), hold));
  const cliEnvFile = path.join(DEMO_DIR, "cli.env");
  await writeCliEnv(cliEnvFile, env);
  banner({ config, daemon, instances: seeded, catcherUrl: catcher.pageUrl, sinkUrl: sink.pageUrl, simUrl: sim.url, logFile, cliEnvFile, portMoved, database, storm: ownDatabase });
  for (const line of held.splice(0)) say(line);
  bannerShown = true;
}

const names = (instances: SeededInstance[]) => new Map(instances.map((i) => [i.id, i.label]));

interface BannerFacts {
  config: Config;
  daemon: Daemon;
  instances: SeededInstance[];
  catcherUrl: string;
  sinkUrl: string;
  simUrl: string;
  logFile: string;
  cliEnvFile: string;
  portMoved: boolean;
  database: { name: string; created: boolean };
  /** The storm runs only on the demo's own database. */
  storm: boolean;
}

function banner(f: BannerFacts): void {
  const { config, daemon } = f;
  const base = config.QRFLEET_PUBLIC_URL;
  const token = config.QRFLEET_ADMIN_TOKEN;
  const expires = new Date(Date.now() + LIVE_LINK_TTL_MS);
  const row = (k: string, v: string) => say(`  ${k.padEnd(14)} ${v}`);
  const cli = (args: string) => say(`  env $(cat ${shown(f.cliEnvFile)}) node dist/src/cli.js ${args}`);
  const db = new URL(config.DATABASE_URL);

  say();
  say("qrfleet demo — the daemon, a simulated GREEN-API fleet, a mail catcher and a webhook receiver");
  say();
  row("daemon", `${daemon.url}${f.portMoved ? "  (port 8080 was taken)" : ""}`);
  row("admin token", `${token}  (a local demo: shown so you can try the API)`);
  row("dashboard", `${base}/admin  (log in with the admin token)`);
  row("queues", `${base}/admin/queues  (bull-board: any user name, the admin token as password)`);
  row("mail catcher", `${f.catcherUrl}  (each message is an .eml file in ${shown(path.join(DEMO_DIR, "mail"))})`);
  row("webhook sink", `${f.sinkUrl}  (checks each Standard Webhooks signature)`);
  row("simulator", `${f.simUrl}  (a fake GREEN-API: rotation 5 s, scan window 30 s)`);
  row("database", `${f.database.name} on ${db.host}${f.database.created ? " (created now)" : ""}, Redis prefix ${config.QRFLEET_REDIS_PREFIX}`);
  row("daemon log", shown(f.logFile));
  say();
  say(`Live QR pages — signed links valid 24 h; open one to watch its QR rotate (3 attempts, backoff from 5 s):`);
  for (const inst of f.instances) {
    say(`  ${inst.label.padEnd(14)} ${inst.idInstance}  ${inst.story}`);
    say(`  ${"".padEnd(14)} ${liveUrl(base, signLiveToken(daemon.ctx.box.hmacKey(), inst.id, expires))}`);
  }
  say();
  say(`Operator "${OPERATOR_NAME}" gets every instance: email to ${OPERATOR_EMAIL} (→ the mail catcher) and a webhook (→ the sink).`);
  say();
  if (f.storm) {
    say(`A storm: ${STORM_FLEET.length} branches nobody is assigned to log out at once. Operator "${STORM_OPERATOR.name}" looks after the whole`);
    say(`fleet (email to ${STORM_OPERATOR.email}): one "Fleet incident" email, then a digest a minute naming every branch with its`);
    say(`live link, instead of ${STORM_FLEET.length} emails an attempt. The dashboard's Operators table switches its mode.`);
  } else {
    say(`(No storm: it would tell this database's own fleet-wide operators. It runs on the demo's database, ${DEMO_DATABASE_URL}.)`);
  }
  say();
  say("Try meanwhile, from another terminal in this directory:");
  cli("status");
  cli("sessions");
  cli("deliveries");
  cli(`enqueue ${f.instances[1]?.idInstance ?? ""}     # Warehouse again, once its session has ended`);
  say(`  curl -s -H "Authorization: Bearer ${token}" ${base}/api/status`);
  say();
  say("What happens, as it happens (Ctrl-C stops everything):");
}

main().catch((err: unknown) => {
  const message = maskSecrets(err instanceof Error ? err.message : String(err));
  process.stderr.write(err instanceof ConfigError ? `demo: ${message}\n` : `demo could not start: ${message}\n`);
  if (!(err instanceof ConfigError)) log?.error({ err }, "demo could not start");
  void stop("", 1);
});
