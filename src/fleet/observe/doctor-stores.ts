import type { Cluster, Redis } from "ioredis";
import pg from "pg";
import type { Config } from "../../config.js";
import { pendingMigrations } from "../../migrate.js";
import { verifySmtp } from "../../notify/email.js";
import { createRedis, redisTarget, type RedisClient } from "../../queues.js";
import type { Check } from "./doctor-check.js";
import { TimedOutError, within } from "../../lib/deadline.js";

/** What `qrfleet doctor` asks of PostgreSQL, Redis and the mail server. */

/** A round trip slower than this to a store is worth a warning: the per-QR path makes a few per batch. */
const SLOW_STORE_MS = 100;

/** The fastest of three round trips: one slow answer is the machine, three are the network. */
async function fastest(work: () => Promise<unknown>): Promise<number> {
  let best = Infinity;
  for (let i = 0; i < 3; i++) {
    const started = performance.now();
    await work();
    best = Math.min(best, performance.now() - started);
  }
  return Math.round(best);
}

const reason = (err: unknown) => (err instanceof Error ? err.message.split("\n")[0]! : String(err));
const slowness = (ms: number) => (ms > SLOW_STORE_MS ? "warn" : "ok");

/** Where a URL points, without its user, password or query. */
function place(url: string): string {
  const u = new URL(url);
  return `${u.hostname}:${u.port || "default port"}${u.pathname.length > 1 ? u.pathname : ""}`;
}

/** Connects, times a round trip, and compares the applied migrations with this version's; the connection is kept for the provider checks. */
export async function openPostgres(config: Config, timeoutMs: number): Promise<{ client: pg.Client | null; checks: Check[] }> {
  const where = place(config.DATABASE_URL);
  const client = new pg.Client({ connectionString: config.DATABASE_URL, connectionTimeoutMillis: timeoutMs, query_timeout: timeoutMs });
  client.on("error", () => undefined);
  try {
    await client.connect();
    const ms = await fastest(() => client.query("SELECT 1"));
    const pending = await pendingMigrations(client);
    const reach: Check = { area: "postgresql", status: slowness(ms), detail: `${where} answers in ${ms} ms`, latencyMs: ms };
    if (reach.status === "warn") reach.fix = "run PostgreSQL nearer the daemons (same region or network)";
    return { client, checks: [reach, migrationCheck(pending)] };
  } catch (err) {
    await client.end().catch(() => undefined);
    const detail = `cannot use ${where}: ${reason(err)}`;
    return { client: null, checks: [{ area: "postgresql", status: "fail", detail, fix: "check DATABASE_URL and that PostgreSQL accepts this host" }] };
  }
}

function migrationCheck(pending: string[]): Check {
  if (pending.length === 0) return { area: "postgresql", status: "ok", detail: "every migration of this version is applied" };
  const detail = `${pending.length} migration${pending.length === 1 ? " is" : "s are"} not applied: ${pending.join(", ")}`;
  return { area: "postgresql", status: "fail", detail, fix: "qrfleet migrate (or start a daemon, which migrates first)" };
}

/** Reachable, and on every master `maxmemory-policy noeviction`: BullMQ's keys must never be evicted. */
export async function checkRedis(config: Config, timeoutMs: number): Promise<Check[]> {
  const client = createRedis(redisTarget(config), false);
  let lastError = "";
  client.on("error", (err: Error) => void (lastError = err.message));
  try {
    const ms = await fastest(() => within(client.ping(), timeoutMs));
    const reach: Check = { area: "redis", status: slowness(ms), detail: `${place(config.REDIS_URL)} answers in ${ms} ms`, latencyMs: ms };
    if (reach.status === "warn") reach.fix = "run Redis nearer the daemons (same region or network)";
    const masters = config.REDIS_CLUSTER ? (client as Cluster).nodes("master") : [client as Redis];
    return [reach, ...(await Promise.all(masters.map((node) => policyCheck(node, timeoutMs))))];
  } catch (err) {
    const why = err instanceof TimedOutError && lastError !== "" ? `${reason(err)} (${lastError})` : reason(err);
    return [{ area: "redis", status: "fail", detail: `cannot reach ${place(config.REDIS_URL)}: ${why}`, fix: "check REDIS_URL (and REDIS_CLUSTER) and that Redis accepts this host" }];
  } finally {
    client.disconnect();
  }
}

async function policyCheck(node: RedisClient & Redis, timeoutMs: number): Promise<Check> {
  const where = `${node.options.host}:${node.options.port}`;
  // INFO, not CONFIG GET: managed services (ElastiCache, Memorystore) disable CONFIG.
  const info = await within(node.info("memory"), timeoutMs);
  const policy = /^maxmemory_policy:(\S+)/m.exec(info)?.[1] ?? "unknown";
  if (policy === "noeviction") return { area: "redis", status: "ok", detail: `maxmemory-policy is noeviction on ${where}` };
  return {
    area: "redis",
    status: "fail",
    detail: `maxmemory-policy is ${policy} on ${where}: BullMQ needs noeviction, or Redis may drop queued jobs when it fills`,
    fix: `redis-cli -h ${node.options.host} -p ${node.options.port} CONFIG SET maxmemory-policy noeviction, and maxmemory-policy noeviction in redis.conf (a managed Redis: its parameter group)`,
  };
}

/** Connects and greets (EHLO), logging in if SMTP_URL has a user. */
export async function checkSmtp(config: Config, timeoutMs: number): Promise<Check[]> {
  const where = place(config.SMTP_URL);
  try {
    const started = performance.now();
    await within(verifySmtp(config.SMTP_URL, timeoutMs), timeoutMs + 1_000);
    const ms = Math.round(performance.now() - started);
    return [{ area: "smtp", status: "ok", detail: `${where} accepts a connection and EHLO in ${ms} ms`, latencyMs: ms }];
  } catch (err) {
    const detail = `cannot use ${where}: ${reason(err)}; operators get no email`;
    return [{ area: "smtp", status: "fail", detail, fix: "check SMTP_URL (scheme smtp or smtps, host, port, user and password) and that the server accepts this host" }];
  }
}
