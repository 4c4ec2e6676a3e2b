import { execFileSync } from "node:child_process";
import { Redis } from "ioredis";
import pg from "pg";

/**
 * Before anything starts: are PostgreSQL and Redis there? A newcomer's first `npm run demo`
 * most often fails here, so each failure says what to start, in one line, with no stack.
 */

const CHECK_TIMEOUT_MS = 3_000;

/** One sentence per unreachable service; empty when both answered. */
export async function preflight(databaseUrl: string, redisUrl: string): Promise<string[]> {
  const results = await Promise.all([checkPostgres(databaseUrl), checkRedis(redisUrl)]);
  return results.filter((r): r is string => r !== null);
}

/** The same server, its `postgres` database: the demo's own may not exist yet. */
export function maintenanceUrl(databaseUrl: string): string {
  const u = new URL(databaseUrl);
  u.pathname = "/postgres";
  return u.toString();
}

function where(url: string, defaultPort: number): { host: string; port: number; at: string; local: boolean } {
  const u = new URL(url);
  const host = u.hostname.replace(/^\[|\]$/g, "") || "127.0.0.1";
  const port = Number(u.port || defaultPort);
  const at = `${host.includes(":") ? `[${host}]` : host}:${port}`;
  return { host, port, at, local: ["127.0.0.1", "localhost", "::1"].includes(host) };
}

function unreachable(what: string, at: string, start: string | null, envKey: string): string {
  return start
    ? `${what} is not reachable at ${at} — start it: ${start} (or set ${envKey})`
    : `${what} is not reachable at ${at} — is that server up and reachable from here? (or set ${envKey})`;
}

async function checkPostgres(databaseUrl: string): Promise<string | null> {
  const { port, at, local } = where(databaseUrl, 5432);
  const client = new pg.Client({ connectionString: maintenanceUrl(databaseUrl), connectionTimeoutMillis: CHECK_TIMEOUT_MS });
  client.on("error", () => undefined);
  try {
    await client.connect();
    await client.query({ text: "SELECT 1", query_timeout: CHECK_TIMEOUT_MS } as pg.QueryConfig);
    return null;
  } catch (err) {
    const e = err as { code?: string; message?: string };
    // 28xxx: the server answered but refused the login; starting something will not help.
    if (e.code?.startsWith("28")) {
      return `PostgreSQL at ${at} refused the login (${e.message}) — set DATABASE_URL to a user that may create databases, e.g. postgresql://user:password@${at}/qrfleet_demo`;
    }
    if (e.code && /^[0-9A-Z]{5}$/.test(e.code)) {
      return `PostgreSQL at ${at} answered with an error (${e.message}) — check DATABASE_URL`;
    }
    return unreachable("PostgreSQL", at, local ? startPostgresHint(port) : null, "DATABASE_URL");
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function checkRedis(redisUrl: string): Promise<string | null> {
  const u = new URL(redisUrl);
  const { host, port, at, local } = where(redisUrl, 6379);
  const redis = new Redis({
    host,
    port,
    username: u.username ? decodeURIComponent(u.username) : undefined,
    password: u.password ? decodeURIComponent(u.password) : undefined,
    tls: u.protocol === "rediss:" ? {} : undefined,
    lazyConnect: true,
    connectTimeout: CHECK_TIMEOUT_MS,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
  });
  redis.on("error", () => undefined);
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error("timeout")), CHECK_TIMEOUT_MS);
  });
  try {
    await Promise.race([redis.connect().then(() => redis.ping()), timeout]);
    return null;
  } catch (err) {
    const message = (err as Error).message;
    if (/NOAUTH|WRONGPASS|invalid password/i.test(message)) {
      return `Redis at ${at} wants a password (${message}) — set REDIS_URL=redis://:password@${at}`;
    }
    const start = port === 6379 ? "redis-server --daemonize yes" : `redis-server --port ${port} --daemonize yes`;
    return unreachable("Redis", at, local ? start : null, "REDIS_URL");
  } finally {
    clearTimeout(timer);
    redis.disconnect();
  }
}

/** Debian/Ubuntu name their clusters; say which one to start when we can tell. */
function startPostgresHint(port: number): string {
  try {
    const out = execFileSync("pg_lsclusters", ["--no-header"], { encoding: "utf8", timeout: 2_000, stdio: ["ignore", "pipe", "ignore"] });
    for (const line of out.split("\n")) {
      const [version, cluster, clusterPort] = line.trim().split(/\s+/);
      if (version && cluster && Number(clusterPort) === port) {
        return `pg_ctlcluster --skip-systemctl-redirect ${version} ${cluster} start`;
      }
    }
  } catch {
    // Not a Debian-style install: fall through to the general advice.
  }
  return port === 5432
    ? "sudo systemctl start postgresql, or docker run -d -p 5432:5432 -e POSTGRES_HOST_AUTH_METHOD=trust postgres:16"
    : `a PostgreSQL server listening on port ${port}`;
}

/** Creates the demo's database when it does not exist yet (the daemon migrates it at start). */
export async function ensureDatabase(databaseUrl: string): Promise<{ name: string; created: boolean }> {
  const name = decodeURIComponent(new URL(databaseUrl).pathname.slice(1));
  if (!name) throw new Error("DATABASE_URL names no database");
  const client = new pg.Client({ connectionString: maintenanceUrl(databaseUrl), connectionTimeoutMillis: CHECK_TIMEOUT_MS });
  await client.connect();
  try {
    const { rowCount } = await client.query("SELECT 1 FROM pg_database WHERE datname = $1", [name]);
    if (rowCount) return { name, created: false };
    await client.query(`CREATE DATABASE "${name.replace(/"/g, '""')}"`);
    return { name, created: true };
  } finally {
    await client.end().catch(() => undefined);
  }
}
