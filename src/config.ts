import { existsSync } from "node:fs";
import { z } from "zod";
import { DEFAULT_STATE_POLICIES, parseStatePolicies } from "./state-policies.js";

/**
 * The only reader of process.env. Every key is documented here and in .env.example with its
 * unit and default; a bad value fails at boot with a sentence that says what to set.
 */

const int = (min: number, max = Number.MAX_SAFE_INTEGER) => z.coerce.number().int().min(min).max(max);
const bool = z
  .enum(["true", "false", "1", "0", "yes", "no"])
  .transform((v) => v === "true" || v === "1" || v === "yes");
const url = (protocols: string[]) =>
  z.string().refine(
    (v) => {
      try {
        return protocols.includes(new URL(v).protocol);
      } catch {
        return false;
      }
    },
    { message: `must be a URL starting with ${protocols.map((p) => p + "//").join(" or ")}` },
  );

/** Key material as `openssl rand -base64 32` prints it; Node's decoder would skip stray characters silently. */
const BASE64 = /^[A-Za-z0-9+/_-]+={0,2}$/;
const isKey = (v: string) => BASE64.test(v) && Buffer.from(v, "base64").length === 32;

/** A comma-separated list of keys; each bad entry is named by its place, never by its value. */
const keyList = z
  .string()
  .transform((v) => v.split(",").map((k) => k.trim()).filter((k) => k !== ""))
  .superRefine((keys, ctx) => {
    keys.forEach((k, i) => {
      if (!isKey(k)) ctx.addIssue({ code: "custom", message: `entry ${i + 1} of ${keys.length} is not 32 random bytes in base64` });
    });
  });

/** Host names, comma-separated: letters, digits, dots and hyphens, each an exact name or `.suffix`. */
const HOST_NAME = /^\.?[a-z0-9-]+(\.[a-z0-9-]+)*\.?$/i;
const hostList = z
  .string()
  .transform((v) => v.split(",").map((h) => h.trim()).filter((h) => h !== ""))
  .refine((hosts) => hosts.every((h) => HOST_NAME.test(h)), { message: "must be host names (or .suffixes) separated by commas" });

const schema = z.object({
  /** PostgreSQL connection string. Default: postgresql://postgres@127.0.0.1:5432/qrfleet */
  DATABASE_URL: url(["postgresql:", "postgres:"]).default("postgresql://postgres@127.0.0.1:5432/qrfleet"),
  /**
   * Where migrations run, when DATABASE_URL is a transaction pooler: PostgreSQL's direct address
   * (migrations hold a session-level advisory lock). Default: DATABASE_URL
   */
  MIGRATE_DATABASE_URL: url(["postgresql:", "postgres:"]).optional(),
  /** Connections in this process's PostgreSQL pool. Default: 20 */
  QRFLEET_DB_POOL: int(1, 500).default(20),
  /** Redis for the queues (BullMQ); with REDIS_CLUSTER, any one node of the cluster. Default: redis://127.0.0.1:6379 */
  REDIS_URL: url(["redis:", "rediss:"]).default("redis://127.0.0.1:6379"),
  /**
   * REDIS_URL is a Redis Cluster (a managed cluster's configuration endpoint, or any node): the other
   * nodes are discovered from it and every key is prefixed with the hash tag {QRFLEET_REDIS_PREFIX}.
   * Default: false
   */
  REDIS_CLUSTER: bool.default(false),
  /**
   * Prefix of every Redis key, so several fleets (or test runs) can share one Redis; in a cluster
   * the keys start with {QRFLEET_REDIS_PREFIX}. Default: qrfleet
   */
  QRFLEET_REDIS_PREFIX: z.string().regex(/^[A-Za-z0-9_.:-]{1,64}$/).default("qrfleet"),
  /** SMTP server for operator email, e.g. smtp://user:pass@mail:587. Default: smtp://127.0.0.1:2525 */
  SMTP_URL: url(["smtp:", "smtps:"]).default("smtp://127.0.0.1:2525"),
  /** From: header of operator email. Default: qrfleet <qrfleet@localhost> */
  SMTP_FROM: z.string().min(3).default("qrfleet <qrfleet@localhost>"),
  /**
   * SMTP connections one process keeps open. Each message takes a few round trips, so five
   * connections carried only ~250 emails a second: too few for a fleet whose sessions start together. Default: 16
   */
  SMTP_CONNECTIONS: int(1, 200).default(16),
  /** 32 random bytes in base64: encrypts instance tokens and webhook secrets, signs live links. No default. */
  QRFLEET_SECRET_KEY: z.string().refine(isKey, { message: "must be 32 random bytes in base64" }).optional(),
  /**
   * Keys QRFLEET_SECRET_KEY replaced, comma-separated base64: values sealed and live links signed
   * under them are still accepted, nothing new is sealed with them (see "Rotating the secret key"
   * in README.md). Default: none
   */
  QRFLEET_SECRET_KEYS_PREVIOUS: keyList.default([]),
  /**
   * Base URL operators (and the provider) reach this daemon at: live-page links, and the webhook URL
   * `instance webhooks --apply` sets, <this>/hooks/greenapi. Default: http://localhost:8080
   */
  QRFLEET_PUBLIC_URL: url(["http:", "https:"]).default("http://localhost:8080"),
  /** Bearer token of the admin HTTP API, at least 16 characters. No default. */
  QRFLEET_ADMIN_TOKEN: z.string().min(16, "must be at least 16 characters").optional(),
  /** HTTP listen port. Default: 8080 */
  PORT: int(0, 65535).default(8080),
  /** HTTP listen address. Default: 127.0.0.1 */
  HOST: z.string().min(1).default("127.0.0.1"),
  /** pino level: fatal, error, warn, info, debug, trace, silent. Default: info */
  LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
  /** How long a worker's hold on a session job lasts without renewal (renewed at half), in ms. Default: 60000 */
  QRFLEET_LOCK_DURATION_MS: int(1000).default(60_000),
  /** How often a worker looks for jobs whose holder died (kill -9), in ms. Default: 30000 */
  QRFLEET_STALLED_INTERVAL_MS: int(500).default(30_000),
  /** QR sessions one process runs at once (they mostly wait on sockets); one process on two cores holds 10,000. Default: 10000 */
  QRFLEET_CONCURRENCY: int(1, 20000).default(10_000),
  /**
   * Sizing at boot: the share of the enabled fleet, in percent, that may log out at once beyond the
   * instances unlinked now. The daemon is told to make room for those sessions, not for the whole
   * fleet's: a linked fleet of 30,000 needs 3,000 sessions, not 30,000. A larger logout is still
   * served, its sessions waiting their turn. Default: 10
   */
  QRFLEET_LOGOUT_HEADROOM_PERCENT: int(0, 100).default(10),
  /**
   * QR sockets opened per second at most, over all daemons: starting 10,000 sessions at once would
   * put 10,000 QR codes and first-QR emails into the same few seconds, and every one of them after
   * into the same seconds of each rotation. Default: 400 (10,000 sessions in 25 s)
   */
  QRFLEET_SESSION_STARTS_PER_S: int(1, 100_000).default(400),
  /** Attempts of one session before it ends timed_out. Default: 5 */
  QRFLEET_SESSION_ATTEMPTS: int(1, 100).default(5),
  /** Backoff before attempt 2, in ms; doubles each attempt, with jitter. Default: 60000 (1 min) */
  QRFLEET_BACKOFF_BASE_MS: int(0).default(60_000),
  /** Longest backoff between attempts, in ms. Default: 1800000 (30 min) */
  QRFLEET_BACKOFF_MAX_MS: int(0).default(1_800_000),
  /** The provider's scan window: a QR socket closes this long after it opens; the live page counts it down, in ms. Default: 100000 */
  QRFLEET_SCAN_WINDOW_MS: int(1000).default(100_000),
  /** A QR socket with no frame for this long ends failed (silent). Default: 45000 ms */
  QRFLEET_SILENCE_MS: int(100).default(45_000),
  /**
   * Shortest time between two QR codes of one attempt handed to operators, in ms; QR frames that come
   * faster are coalesced to the newest (0: no bound). The provider rotates about every 20 s; 500 ms
   * stays clear of that and of the 1 s rotation the benchmark's overload runs use, while a provider
   * that floods QR frames reaches operators at two a second at most. Default: 500
   */
  QRFLEET_QR_MIN_INTERVAL_MS: int(0, 3_600_000).default(500),
  /**
   * QR frames one attempt's socket may send beyond one per QRFLEET_QR_MIN_INTERVAL_MS (counted from
   * the open) before the attempt ends failed (qr_flood) and is retried with backoff: enough for a
   * burst at connect, far below a flood. Default: 50
   */
  QRFLEET_QR_FLOOD_FRAMES: int(1, 1_000_000).default(50),
  /** Hard bound on one attempt's socket, past the provider's 100 s window. Default: 130000 ms */
  QRFLEET_ATTEMPT_MAX_MS: int(500).default(130_000),
  /** Timeout of each provider REST call and websocket upgrade, in ms. Default: 10000 */
  QRFLEET_HTTP_TIMEOUT_MS: int(100).default(10_000),
  /**
   * Least time between two REST calls of one method (getStateInstance, qr, …) to one instance,
   * across every daemon (kept in Redis): GREEN-API allows about one a second. 0: no limit. Default: 1000 ms
   */
  QRFLEET_PROVIDER_CALL_INTERVAL_MS: int(0, 3_600_000).default(1_000),
  /**
   * REST calls per second toward one apiUrl host, every instance and daemon together: each daemon
   * spends an equal share of it, counted locally, and the sweep warns when a host's instances need
   * more than it allows. 0: no limit. Default: 0 (a sweep of 100,000 instances a minute needs 1,667)
   */
  QRFLEET_PROVIDER_HOST_RPS: int(0, 1_000_000).default(0),
  /**
   * Provider calls and QR sockets may go to loopback and private addresses (a self-hosted provider,
   * the simulator). Link-local and cloud metadata addresses are refused whatever this says. Default: false
   */
  QRFLEET_ALLOW_PRIVATE_PROVIDER: bool.default(false),
  /** Operators' webhooks may go to loopback and private addresses (a receiver on the same network). Default: false */
  QRFLEET_ALLOW_PRIVATE_WEBHOOKS: bool.default(false),
  /**
   * When set, /metrics answers only `Authorization: Bearer <this>` (a secret, 32 characters at
   * least): the fleet's states and queue depths are not for whoever reaches the port. Default: none (open)
   */
  QRFLEET_METRICS_TOKEN: z.string().min(32, "must be at least 32 characters").optional(),
  /**
   * Host names, comma-separated, the pages and /metrics answer to besides the public URL's,
   * localhost and any address (a name starting with a dot admits every name under it). Other names
   * get a 421, so a page on a name rebound to this address reads nothing. Default: none
   */
  QRFLEET_ALLOWED_HOSTS: hostList.default([]),
  /** Wrong admin tokens one client address may present (Bearer, Basic, the login form) before it waits. Default: 10 */
  QRFLEET_LOGIN_FAILURES: int(1, 1_000_000).default(10),
  /** The window those failures are counted in, and the wait after them, in ms. Default: 900000 (15 min) */
  QRFLEET_LOGIN_WINDOW_MS: int(1_000).default(900_000),
  /** The queue board (/admin/queues) may retry, clean, obliterate, add and pause jobs. Default: false (read-only) */
  QRFLEET_QUEUE_BOARD_WRITABLE: bool.default(false),
  /** The longest Retry-After of a provider's 429 that is waited out, in ms; a longer one is cut to this. Default: 60000 */
  QRFLEET_PROVIDER_RETRY_AFTER_MAX_MS: int(0, 3_600_000).default(60_000),
  /** A provider's 429s one call waits out before it gives up as rate limited (transient). Default: 3 */
  QRFLEET_PROVIDER_RATE_LIMIT_RETRIES: int(0, 100).default(3),
  /**
   * getSettings/setSettings calls in flight at once for `qrfleet instance webhooks` (each instance
   * is also held to one call a second per method, QRFLEET_PROVIDER_CALL_INTERVAL_MS). Default: 8
   */
  QRFLEET_SETTINGS_CONCURRENCY: int(1, 200).default(8),
  /**
   * After setSettings, the wait before its settings are read back to check they stuck, in ms: the
   * call reboots the instance and the provider says a change can take minutes. Default: 60000
   */
  QRFLEET_SETTINGS_VERIFY_AFTER_MS: int(0, 3_600_000).default(60_000),
  /**
   * After a re-link (a session ended authorized), the wait before the instance's webhook settings
   * are read again, in ms: the instance restarts after a scan, and users report settings changing
   * then. Only instances whose settings were read before (`instance webhooks`) are checked. Default: 120000
   */
  QRFLEET_SETTINGS_CHECK_AFTER_MS: int(0, 86_400_000).default(120_000),
  /** Time a client has to send a whole request (headers and body) to our HTTP server, in ms. Default: 10000 */
  QRFLEET_HTTP_REQUEST_TIMEOUT_MS: int(100).default(10_000),
  /**
   * The provider's webhook keeps the fleet's instances and their webhook tokens (as SHA-256) in
   * memory and reads them again this often, in ms. A change (the CLI, any daemon's API) is taken at
   * once, announced over Redis, and a daemon back from losing Redis reads the fleet again; this
   * bounds how long a change goes unseen if its announcement was lost anyway. 0: read the instances
   * of each webhook's idInstance for that webhook. Default: 300000
   */
  QRFLEET_PROVIDER_HOOK_CACHE_MS: int(0, 600_000).default(300_000),
  /**
   * Fleet state sweep period: every enabled instance is polled once an interval, at its own point
   * of it, in ms (at least 1000). 0: no periodic sweep (only the one at a daemon's start, instances'
   * own cron schedules and the provider's webhook). Default: 60000
   */
  QRFLEET_SWEEP_INTERVAL_MS: int(0).refine((v) => v === 0 || v >= 1000, "must be 0 or at least 1000").default(60_000),
  /**
   * getStateInstance calls one daemon has in flight at once for the sweep: polls a second × the
   * provider's answer time (1,000 a second at 100 ms is 100), with room for a slow provider. Default: 500
   */
  QRFLEET_SWEEP_CONCURRENCY: int(1, 10_000).default(500),
  /**
   * The sweep interval is cut into this many slices, each claimed in turn by any daemon (at least
   * 500 ms each, so fewer for a short interval): the work is shared, each instance polled at its own
   * point of the interval. Default: 60
   */
  QRFLEET_SWEEP_SLICES: int(1, 3_600).default(60),
  /**
   * An instance whose provider webhook is trusted (its last word agrees with the last known state)
   * is polled this often instead of every QRFLEET_SWEEP_INTERVAL_MS, as a backstop; one whose
   * webhook missed a change is polled at the full rate until the webhook speaks again, in ms.
   * 0: every instance at the full rate. Default: 600000 (10 min)
   */
  QRFLEET_SWEEP_INTERVAL_HOOKED_MS: int(0).default(600_000),
  /**
   * The full sweep (at a daemon's start, or `qrfleet sweep`) spaces its getStateInstance calls
   * evenly over this window instead of bursting them at the provider, in ms; held under 90% of QRFLEET_SWEEP_INTERVAL_MS so one sweep ends before the
   * next. 0: as fast as QRFLEET_SWEEP_CONCURRENCY allows. Default: 20000 — at 10,000 instances that
   * is 500 calls a second, still faster than sessions start (QRFLEET_SESSION_STARTS_PER_S), so the
   * spread never delays a re-link of a fleet logged out at once, yet the calls are no longer one burst
   */
  QRFLEET_SWEEP_SPREAD_MS: int(0).default(20_000),
  /** …but a sweep never polls slower than this many calls a second, so a small fleet is swept in moments. Default: 100 */
  QRFLEET_SWEEP_MIN_RATE_PER_S: int(1, 100_000).default(100),
  /**
   * What each provider state leads to, as state=policy pairs over the defaults, e.g.
   * "yellowCard=reboot,unknown=alert" (policies: src/state-policies.ts). Default:
   * notAuthorized=start_session, authorized=end_session, blocked=alert, yellowCard=alert,
   * starting=reboot, sleepMode=warn_unlink, unknown=record (GREEN-API's own advice per state)
   */
  QRFLEET_STATE_POLICIES: z
    .string()
    .transform((v, ctx) => {
      try {
        return parseStatePolicies(v);
      } catch (err) {
        ctx.addIssue({ code: "custom", message: (err as Error).message });
        return z.NEVER;
      }
    })
    .default(DEFAULT_STATE_POLICIES),
  /** Policy `reboot`: time in the state before the one reboot, in ms; the provider says `starting` takes up to 5 min. Default: 300000 */
  QRFLEET_REBOOT_AFTER_MS: int(0).default(300_000),
  /** Policy `reboot`: time still in the state after the reboot before operators are alerted, in ms; the provider says wait ~2 min. Default: 120000 */
  QRFLEET_REBOOT_ALERT_AFTER_MS: int(0).default(120_000),
  /**
   * Policy `warn_unlink` (sleepMode): time with the phone offline before operators are warned, in
   * ms; a phone off over a weekend is no news, and 3 days leave 11 to act. Default: 259200000 (3 days)
   */
  QRFLEET_SLEEP_WARN_AFTER_MS: int(0).default(259_200_000),
  /** Policy `warn_unlink`: WhatsApp unlinks a companion whose phone stays offline this long, in ms. Default: 1209600000 (14 days) */
  QRFLEET_SLEEP_UNLINK_AFTER_MS: int(1).default(1_209_600_000),
  /** How often the reconciler re-enqueues due sessions from PostgreSQL, in ms. Default: 60000 */
  QRFLEET_RECONCILE_INTERVAL_MS: int(1000).default(60_000),
  /** On SIGTERM, how long running sessions get before they are handed back, in ms. Default: 10000 */
  QRFLEET_SHUTDOWN_GRACE_MS: int(0).default(10_000),
  /** QR images older than this are deleted, in days. Default: 30 */
  QRFLEET_QR_RETENTION_DAYS: int(1).default(30),
  /** Ended sessions (with their attempts, events and deliveries) older than this are deleted, in days. Default: 365 */
  QRFLEET_AUDIT_RETENTION_DAYS: int(1).default(365),
  /** Lifetime of a live-page link, in seconds. Default: 86400 (24 h) */
  QRFLEET_LIVE_LINK_TTL_S: int(60).default(86_400),
  /** Unscanned attempts after which tier-2 operators are notified too. Default: 2 */
  QRFLEET_ESCALATE_AFTER: int(1).default(2),
  /** Log an instance out when its scan shows another number than expected. Default: false */
  QRFLEET_LOGOUT_ON_WRONG_NUMBER: bool.default(false),
  /** Deliveries (email, webhook) sent at once by one process. Default: 50 */
  QRFLEET_NOTIFY_CONCURRENCY: int(1, 1000).default(50),
  /** How long one run holds a delivery while sending; must outlast any one send, in ms. Default: 120000 */
  QRFLEET_DELIVERY_LEASE_MS: int(1000).default(120_000),
  /** Scales every delivery retry delay (outcomes: 5 s … 10 h; QR updates: 1 s … 16 s). Default: 1 */
  QRFLEET_DELIVERY_RETRY_MULTIPLIER: z.coerce.number().min(0.0001).max(100).default(1),
  /** Timeout of each outbound webhook POST, in ms. Default: 10000 */
  QRFLEET_WEBHOOK_TIMEOUT_MS: int(100).default(10_000),
  /**
   * The partner token GREEN-API issues for a whole account: `qrfleet instance sync` lists the
   * account's instances with it. A secret (it controls every instance of the account). No default.
   */
  GREENAPI_PARTNER_TOKEN: z
    .string()
    .trim()
    .regex(/^[A-Za-z0-9._~-]{8,256}$/, "must be 8 to 256 letters, digits, '.', '_', '~' or '-' (the partner token GREEN-API issued)")
    .optional(),
  /** Where the partner API answers (scheme and host). Default: https://api.green-api.com */
  GREENAPI_PARTNER_API_URL: url(["https:", "http:"]).default("https://api.green-api.com"),
  /**
   * apiUrl given to an instance `instance sync` creates when the partner API does not name its
   * host; an instance that exists keeps its own. Default: https://api.green-api.com
   */
  GREENAPI_INSTANCE_API_URL: url(["https:", "http:"]).default("https://api.green-api.com"),
  /** The longest wait a receiver's Retry-After (on 429 or 503) sets before the next try, in ms. Default: 3600000 (1 h) */
  QRFLEET_WEBHOOK_RETRY_AFTER_MAX_MS: int(0).default(3_600_000),
  /**
   * A webhook channel whose every try has failed for this long is disabled and its operator's email
   * channels are told; a 410 Gone disables it at once. Default: 259200000 ms (3 days)
   */
  QRFLEET_CHANNEL_DISABLE_AFTER_MS: int(1000).default(259_200_000),
  /**
   * A channel in digest mode: what it is held back is sent once its oldest event has waited this
   * long, grouped into one message, in ms. Default: 120000 (2 min)
   */
  QRFLEET_DIGEST_WINDOW_MS: int(100).default(120_000),
  /** The least time between two digests to one channel, in ms. Default: 600000 (10 min) */
  QRFLEET_DIGEST_INTERVAL_MS: int(100).default(600_000),
  /**
   * A fleet incident: more instances logged out within this window (sessions started by the sweep
   * or the provider's webhook) than the larger of QRFLEET_STORM_MIN_LOGOUTS and
   * QRFLEET_STORM_SHARE_PERCENT of the enabled fleet, in ms. Default: 300000 (5 min)
   */
  QRFLEET_STORM_WINDOW_MS: int(1000).default(300_000),
  /** Default: 20 */
  QRFLEET_STORM_MIN_LOGOUTS: int(1).default(20),
  /** Default: 1 (%) */
  QRFLEET_STORM_SHARE_PERCENT: z.coerce.number("must be a number").min(0).max(100).default(1),
  /**
   * During an incident, an immediate channel of a kind a person reads that would get more than
   * this many instances' messages a minute is switched to digests until it ends. Default: 10
   */
  QRFLEET_STORM_CHANNEL_PER_MINUTE: int(1).default(10),
});

export type Config = Readonly<
  Omit<z.infer<typeof schema>, "QRFLEET_SECRET_KEY" | "QRFLEET_ADMIN_TOKEN"> & {
    QRFLEET_SECRET_KEY: string;
    QRFLEET_ADMIN_TOKEN: string;
  }
>;
export type RequiredKey = "QRFLEET_SECRET_KEY" | "QRFLEET_ADMIN_TOKEN";

/** Where migrations run: PostgreSQL's direct address when DATABASE_URL is a pooler. */
export const migrationUrl = (c: Pick<Config, "MIGRATE_DATABASE_URL" | "DATABASE_URL">): string => c.MIGRATE_DATABASE_URL ?? c.DATABASE_URL;

const HOW_TO_SET: Record<RequiredKey, string> = {
  QRFLEET_SECRET_KEY: "set QRFLEET_SECRET_KEY to 32 random bytes in base64 (openssl rand -base64 32)",
  QRFLEET_ADMIN_TOKEN: "set QRFLEET_ADMIN_TOKEN to a random string of at least 16 characters (openssl rand -hex 24)",
};
const PREVIOUS_KEYS_HINT =
  "list the keys QRFLEET_SECRET_KEY replaced, comma-separated, each as openssl rand -base64 32 printed it";
const HINTS: Record<string, string> = { ...HOW_TO_SET, QRFLEET_SECRET_KEYS_PREVIOUS: PREVIOUS_KEYS_HINT };

export class ConfigError extends Error {
  readonly code = "config_invalid";
  override name = "ConfigError";
}

/**
 * The current key listed as previous too is harmless to the code but almost always a step of a
 * rotation done wrong (the new key never set): say so before anything is sealed.
 */
function checkKeyring(current: string | undefined, previous: readonly string[]): void {
  const bytes = (k: string) => Buffer.from(k, "base64").toString("hex");
  const seen = new Set(current === undefined ? [] : [bytes(current)]);
  previous.forEach((k, i) => {
    if (seen.has(bytes(k))) {
      const what = current !== undefined && bytes(k) === bytes(current) ? "the current QRFLEET_SECRET_KEY" : "a key listed before it";
      throw new ConfigError(`invalid configuration: QRFLEET_SECRET_KEYS_PREVIOUS entry ${i + 1} is ${what}: ${PREVIOUS_KEYS_HINT}, without repeats`);
    }
    seen.add(bytes(k));
  });
}

/** A cluster has only database 0; a URL naming another would otherwise be followed silently into it. */
function checkClusterUrl(redisUrl: string): void {
  const db = new URL(redisUrl).pathname.slice(1);
  if (db !== "" && db !== "0") {
    throw new ConfigError(`invalid configuration: REDIS_URL names database ${db}, but a Redis Cluster has only database 0: remove /${db} from REDIS_URL`);
  }
}

/** Reads .env from the working directory if present; values already in the environment win. */
function loadDotEnv(): void {
  if (existsSync(".env")) process.loadEnvFile(".env");
}

/**
 * Parses the environment. `required` lists keys that have no safe default and that this
 * command needs; a command like `qrfleet scan` needs neither secret.
 */
export function loadConfig(
  env: NodeJS.ProcessEnv = process.env,
  required: readonly RequiredKey[] = ["QRFLEET_SECRET_KEY", "QRFLEET_ADMIN_TOKEN"],
): Config {
  if (env === process.env) loadDotEnv();
  const present = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ""));
  const parsed = schema.safeParse(present);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => {
      const key = String(i.path[0]);
      const hint = HINTS[key];
      return hint ? `${key} ${i.message}: ${hint}` : `${key} ${i.message} (got an unusable value)`;
    });
    throw new ConfigError(`invalid configuration: ${lines.join("; ")}`);
  }
  const missing = required.filter((k) => parsed.data[k] === undefined);
  if (missing.length > 0) {
    throw new ConfigError(`missing configuration: ${missing.map((k) => HOW_TO_SET[k]).join("; ")}`);
  }
  checkKeyring(parsed.data.QRFLEET_SECRET_KEY, parsed.data.QRFLEET_SECRET_KEYS_PREVIOUS);
  if (parsed.data.REDIS_CLUSTER) checkClusterUrl(parsed.data.REDIS_URL);
  return Object.freeze({
    ...parsed.data,
    QRFLEET_SECRET_KEY: parsed.data.QRFLEET_SECRET_KEY ?? "",
    QRFLEET_ADMIN_TOKEN: parsed.data.QRFLEET_ADMIN_TOKEN ?? "",
    // Present even when unset, so every key is listed (the config test compares them with .env.example).
    GREENAPI_PARTNER_TOKEN: parsed.data.GREENAPI_PARTNER_TOKEN,
  });
}
