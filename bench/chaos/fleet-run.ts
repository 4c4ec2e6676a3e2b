import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { loadConfig } from "../../src/config.js";
import type { FleetContext } from "../../src/fleet/context.js";
import { importInstances } from "../../src/fleet/instances/import.js";
import { addOperator, setChannelMode } from "../../src/fleet/operators/operators.js";
import { openFleet } from "../../src/wiring/runtime.js";
import { enqueueSessions } from "../../src/fleet/sessions/sessions.js";
import { createLogger } from "../../src/log.js";
import { startSimulator, type Script, type Simulator } from "../../src/simulator/index.js";
import { DAEMON_ENTRY, spawnDaemon, stopDaemon, waitReady, type DaemonProcess } from "../daemons.js";
import { DeliveryLedger } from "../ledger.js";
import { Captured } from "./captured.js";
import { startFaultReceiver, type FaultReceiver } from "./fault-receiver.js";
import { startOutageSink, type OutageSink } from "./mail-outage.js";
import type { OwnPostgres } from "./own-postgres.js";
import type { OwnRedis } from "./own-redis.js";
import { timingsEnv, type Timings } from "./timings.js";

/**
 * One scenario's fleet: a fresh database on the run's own PostgreSQL and a fresh key prefix on
 * its own Redis, a few hundred simulated instances, one webhook operator and one email operator
 * (fleet-wide defaults, so every session is theirs), and daemon processes started as `npm start`
 * starts them. Everything it starts is ended by close(), whatever happened before.
 */
export interface FleetRunOptions {
  name: string;
  pg: OwnPostgres;
  redis: OwnRedis;
  sessions: number;
  daemons: number;
  timings: Timings;
  /** The provider's behaviour for instance i of the run. */
  scriptFor(i: number): Partial<Script>;
  /** The phone that should own every instance (the import's `phone` column); none by default. */
  expectedPhone?: string;
  /** False: open() starts no daemon, so peers can be set up first; then call startDaemons(). Default: true */
  startDaemons?: boolean;
}

const BOOT_BOUND_MS = 60_000;
const STOP_BOUND_MS = 20_000;

export class FleetRun {
  readonly captured = new Captured();
  readonly daemons: DaemonProcess[] = [];
  /** The provider's frames matched to what landed (bench/ledger.ts). */
  ledger!: DeliveryLedger;
  sim!: Simulator;
  receiver!: FaultReceiver;
  sink!: OutageSink;
  databaseUrl = "";
  private ctx?: FleetContext & { close(): Promise<void> };
  private env: Record<string, string> = {};
  readonly runDir = mkdtempSync(path.join(tmpdir(), "qrfleet-chaos-"));
  readonly startedAt = Date.now();

  private constructor(readonly opts: FleetRunOptions) {}

  /** Builds the fleet; on failure everything already started is ended before the error is thrown. */
  static async open(opts: FleetRunOptions): Promise<FleetRun> {
    const run = new FleetRun(opts);
    try {
      await run.build();
      return run;
    } catch (err) {
      await run.close();
      throw err;
    }
  }

  private async build(): Promise<void> {
    const { opts, captured } = this;
    if (!existsSync(DAEMON_ENTRY)) throw new Error(`${DAEMON_ENTRY} is missing: run npm run build first`);
    const tag = `${opts.name.replace(/[^a-z0-9]/g, "_")}_${randomBytes(3).toString("hex")}`;
    this.databaseUrl = await opts.pg.newDatabase(`qrfleet_chaos_${tag}`);
    captured.secrets.secretKey = randomBytes(32).toString("base64");
    captured.secrets.adminToken = `chaos-admin-${randomBytes(16).toString("hex")}`;
    captured.redisPrefix = `qrfleet_chaos_${tag}`;
    this.receiver = await startFaultReceiver(captured);
    this.sink = await startOutageSink(captured);
    this.env = {
      PATH: process.env.PATH ?? "",
      DATABASE_URL: this.databaseUrl,
      REDIS_URL: opts.redis.url,
      QRFLEET_REDIS_PREFIX: captured.redisPrefix,
      QRFLEET_SECRET_KEY: captured.secrets.secretKey,
      QRFLEET_ADMIN_TOKEN: captured.secrets.adminToken,
      SMTP_URL: this.sink.url,
      HOST: "127.0.0.1",
      LOG_LEVEL: "info",
      QRFLEET_ALLOW_PRIVATE_PROVIDER: "true",
      QRFLEET_ALLOW_PRIVATE_WEBHOOKS: "true",
      ...timingsEnv(opts.timings),
    };
    this.ctx = openFleet(loadConfig(this.env), createLogger({ level: "silent" }));
    const instances = Array.from({ length: opts.sessions }, (_, i) => ({
      idInstance: idInstanceOf(i),
      // Distinctive, so a scan of what the system wrote can look for each one.
      token: `chaostoken${i}x${randomBytes(20).toString("hex")}`,
      ...opts.scriptFor(i),
    }));
    captured.secrets.instanceTokens = instances.map((i) => i.token);
    this.ledger = new DeliveryLedger(instances.map((i) => i.idInstance));
    this.sim = await startSimulator({
      log: createLogger({ level: "silent" }),
      imageMode: "tagged",
      defaults: { rotationMs: opts.timings.rotationMs, scanWindowMs: opts.timings.windowMs },
      instances,
      hooks: {
        qrFrame: (f) => this.ledger.frameSent(f),
        socketOpened: (s) => this.ledger.socketOpened(s.idInstance, s.connection),
        socketClosed: (s) => this.ledger.socketClosed(s.idInstance),
      },
    });
    this.receiver.onLanded((webhookId, body, at) => this.ledger.webhook({ webhookId, ...landedQr(body), at }));
    const phone = opts.expectedPhone ? `,${opts.expectedPhone}` : "";
    const csv = [`apiUrl,idInstance,token${phone && ",phone"}`, ...instances.map((i) => `${this.sim.url},${i.idInstance},${i.token}${phone}`)].join("\n");
    await importInstances(this.ctx, csv);
    const whsec = `whsec_${randomBytes(32).toString("base64")}`;
    await addOperator(this.ctx, { name: `hooks-${tag}`, webhook: this.receiver.url, webhookSecret: whsec });
    const mail = await addOperator(this.ctx, { name: `mail-${tag}`, email: `ops-${tag}@chaos.invalid` });
    // Each email on its own, as an assigned operator gets them: the faults are about that path (a fleet-wide one would get digests).
    await setChannelMode(this.ctx, mail.operator.channels[0]!.id, "immediate");
    captured.secrets.webhookSecrets.push(whsec);
    this.receiver.trust(whsec);
    if (opts.startDaemons !== false) await this.startDaemons();
  }

  /** Starts the run's daemons, one after the other (each sweeps the fleet as it starts). */
  async startDaemons(): Promise<void> {
    for (let k = 0; k < this.opts.daemons; k += 1) await this.startDaemon(k);
  }

  /** Starts daemon `index` (again, after a kill) and waits for /readyz. */
  async startDaemon(index: number): Promise<DaemonProcess> {
    const d = await spawnDaemon(index, { env: this.env, runDir: this.runDir, profile: null });
    this.daemons[index] = d;
    this.captured.daemonLogPaths.push(d.logPath);
    await waitReady([d], BOOT_BOUND_MS, AbortSignal.timeout(BOOT_BOUND_MS));
    return d;
  }

  /** kill -9, as a crash: no shutdown, no hand-back. */
  async kill9(index: number): Promise<void> {
    const d = this.daemons[index]!;
    d.stopping = true;
    d.child.kill("SIGKILL");
    await d.exited;
  }

  /** Sessions of the run started at once, as `qrfleet enqueue --all-unlinked` does. */
  async enqueueAll(): Promise<number> {
    return (await enqueueSessions(this.ctx!, { allUnlinked: true }, "admin")).created;
  }

  /** Seconds since the run was opened, for the summary's "when". */
  elapsedS(): number {
    return Math.round((Date.now() - this.startedAt) / 100) / 10;
  }

  /** Daemons that exited without the run having stopped or killed them. */
  unexpectedExits(): string[] {
    return this.daemons
      .filter((d) => !d.stopping && (d.child.exitCode !== null || d.child.signalCode !== null))
      .map((d) => `daemon ${d.index + 1} exited (${d.child.signalCode ?? `code ${d.child.exitCode}`}); see ${d.logPath}`);
  }

  private closing: Promise<void> | undefined;

  /** Stops everything the run started (once, however often it is asked). The log directory is removed unless `keepLogs`. */
  close(keepLogs = false): Promise<void> {
    return (this.closing ??= this.shutdown(keepLogs));
  }

  private async shutdown(keepLogs: boolean): Promise<void> {
    await Promise.allSettled(this.daemons.map((d) => stopDaemon(d, STOP_BOUND_MS)));
    await Promise.allSettled([this.ctx?.close(), this.sim?.close(), this.receiver?.close(), this.sink?.close()]);
    await this.captured.keepDaemonLogs();
    if (!keepLogs) rmSync(this.runDir, { recursive: true, force: true });
  }
}

/** The simulated instance number `i` (0-based) of a run. */
export const idInstanceOf = (i: number) => String(7_700_000_000 + i + 1);

const DATA_URL = "data:image/png;base64,";

/** The type and image sha256 of a landed webhook, as the ledger matches them to frames. */
function landedQr(body: unknown): { type: string; pngSha256: string | null } {
  const event = (body ?? {}) as { type?: unknown; data?: { qr?: unknown } };
  const type = typeof event.type === "string" ? event.type : "(not JSON)";
  const qr = event.data?.qr;
  if (typeof qr !== "string" || !qr.startsWith(DATA_URL)) return { type, pngSha256: null };
  return { type, pngSha256: sha256Hex(Buffer.from(qr.slice(DATA_URL.length), "base64")) };
}

const sha256Hex = (b: Buffer) => createHash("sha256").update(b).digest("hex");
