import { Command, Option } from "commander";
import { migrationUrl } from "../config.js";
import { migrate, type MigrationResult } from "../migrate.js";
import { FATES, simulatorCommand } from "../simulator/index.js";
import { cliConfig, cliLogger } from "./context.js";
import { emit, intArg, type Out } from "./output.js";

/** Commands that run the system rather than ask the fleet: migrate, daemon, simulator. */

/** Commands that run until a signal; the CLI must not hurry them to exit. */
export const LONG_RUNNING = new Set(["daemon", "simulator"]);

function describeMigration(r: MigrationResult): string {
  const lines = r.applied.length > 0
    ? [`applied ${r.applied.length} migration${r.applied.length === 1 ? "" : "s"}:`, ...r.applied.map((n) => `  ${n}`)]
    : [`the database is up to date (${r.alreadyApplied.length} migrations applied before)`];
  for (const name of r.checksumChanged) {
    lines.push(`warning: ${name} was edited after it was applied; write a new migration instead`);
  }
  return lines.join("\n");
}

function migrateCommand(): Command {
  return new Command("migrate")
    .description("apply pending database migrations (prisma/migrations) to MIGRATE_DATABASE_URL, else DATABASE_URL")
    .option("--json", "print JSON")
    .action(async (o: Out) => {
      const config = cliConfig([]);
      cliLogger(config);
      emit(o, await migrate(migrationUrl(config)), describeMigration);
    });
}

function daemonCommand(): Command {
  return new Command("daemon")
    .description("run the workers and the HTTP server until SIGTERM/SIGINT")
    .option("--json", "accepted for symmetry: the daemon's logs are JSON lines already")
    .action(async () => {
      // Imported when used: the daemon pulls in the HTTP server and every worker.
      const { runDaemon } = await import("../../workers/main.js");
      await runDaemon();
    });
}

interface SimulatorOpts {
  port: number;
  host: string;
  instances: number;
  rotationMs?: number;
  windowMs?: number;
  fate?: (typeof FATES)[number];
  scanAfterMs?: number;
  floodFrames?: number;
  floodBurst?: number;
  stateLatencyMs?: number;
  json?: boolean;
  seed: string;
  idPrefix: string;
  poolImages?: boolean;
  webhookUrl?: string;
  partnerToken?: string;
}

function simulatorCmd(): Command {
  const ms = intArg(10, 86_400_000);
  return new Command("simulator")
    .description("run a fake GREEN-API (REST + QR websocket) with generated instances until Ctrl-C")
    .option("--port <port>", "listen port", intArg(0, 65535), 7788)
    .option("--host <host>", "listen address", "127.0.0.1")
    .option("--instances <n>", "instances to generate", intArg(0, 999_999), 20)
    .option("--rotation-ms <ms>", "QR rotation period (provider: 20000)", ms)
    .option("--window-ms <ms>", "scan window of one socket (provider: 100000)", ms)
    .addOption(new Option("--fate <fate>", "what every instance does when a socket opens (default never)").choices(FATES))
    .option("--scan-after-ms <ms>", "fate scan: ms from socket open to the scan", intArg(0, 86_400_000))
    .option("--flood-frames <n>", "fate flood: distinct QR frames each socket sends at once (default 2000)", intArg(1, 1_000_000))
    .option("--flood-burst <n>", "fate flood: frames sent per turn of the event loop (default 100)", intArg(1, 100_000))
    .option("--state-latency-ms <ms>", "getStateInstance answers after this many ms (default 0)", intArg(0, 60_000))
    .option("--seed <seed>", "seed of the generated tokens", "1")
    .option("--id-prefix <digits>", "leading digits of generated idInstance values", "1101")
    .option("--pool-images", "reuse a small pool of QR images (for thousands of sockets)")
    .option("--webhook-url <url>", "where to POST stateInstanceChanged webhooks")
    .option("--partner-token <token>", "serve a partner account of every instance (getInstances) under this partner token")
    .option("--json", "print the instances as JSON")
    .action(async (o: SimulatorOpts) => {
      cliLogger(cliConfig([]));
      const { poolImages, ...rest } = o;
      await simulatorCommand({ ...rest, json: o.json ?? false, uniqueImages: poolImages !== true });
    });
}

export function systemCommands(): Command[] {
  return [migrateCommand(), daemonCommand(), simulatorCmd()];
}
