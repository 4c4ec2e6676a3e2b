import { Queue, type ConnectionOptions, type JobsOptions } from "bullmq";
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from "ioredis";
import type { Config } from "./config.js";

/** Queue names, job payloads and default options: the only place that knows how jobs look. */
export const QUEUE = {
  session: "qr-session",
  notify: "notify",
  sweep: "sweep",
  settings: "settings",
} as const;

export interface SessionJob {
  sessionId: string;
  attempt: number;
}
export interface NotifyJob {
  deliveryId: string;
}
export type SweepJob =
  /** Slots were jobs of this queue before they had their own; one left over is dropped. */
  | { kind: "slice"; slot: number; sliceMs: number }
  | { kind: "sweep"; staleOnly?: boolean }
  | { kind: "reauth"; instanceId: string }
  | { kind: "retention" };
/** A read of the instance's webhook settings after a re-link, due at `dueAt` (ms since the epoch; Instance.settingsCheckDueAt). */
export interface SettingsJob {
  instanceId: string;
  dueAt: number;
}

/** BullMQ job ids may not contain ":"; ours are deterministic so a re-add is a no-op. */
export const sessionJobId = (sessionId: string, attempt: number) => `s-${sessionId}-${attempt}`;
export const notifyJobId = (deliveryId: string) => `d-${deliveryId}`;
export const reauthSchedulerId = (instanceId: string) => `reauth-${instanceId}`;
export const settingsJobId = (job: SettingsJob) => `c-${job.instanceId}-${job.dueAt}`;
/** Before the sweep was sliced it had a scheduler of this id; a daemon removes it when it finds one. */
export const SWEEP_SCHEDULER_ID = "fleet-sweep";
/** The sweep's slots were jobs of this queue before they were claimed (fleet/triggers/slot-claims.ts); a daemon empties it. */
export const RETIRED_SLICE_QUEUE = "sweep-slices";
export const RETENTION_SCHEDULER_ID = "qr-retention";

/** Every queue keeps a bounded history: nothing in Redis grows without a bound. */
const KEEP: Pick<JobsOptions, "removeOnComplete" | "removeOnFail"> = {
  removeOnComplete: { age: 24 * 3600, count: 20_000 },
  removeOnFail: { age: 7 * 24 * 3600, count: 50_000 },
};

/**
 * A session job's own BullMQ retries cover infrastructure errors inside an attempt (PostgreSQL
 * restarting, say), not scan timeouts: those are new attempts with their own job and backoff.
 */
export const SESSION_JOB_OPTIONS: JobsOptions = {
  ...KEEP,
  attempts: 8,
  backoff: { type: "exponential", delay: 1_000, jitter: 0.5 },
};
export const NOTIFY_JOB_OPTIONS: JobsOptions = {
  ...KEEP,
  attempts: 8,
  backoff: { type: "exponential", delay: 2_000, jitter: 0.5 },
};
export const SWEEP_JOB_OPTIONS: JobsOptions = { ...KEEP, attempts: 1 };
/** A settings check handles the provider's failures itself; these retries are for PostgreSQL or Redis away. */
export const SETTINGS_JOB_OPTIONS: JobsOptions = {
  ...KEEP,
  attempts: 5,
  backoff: { type: "exponential", delay: 5_000, jitter: 0.5 },
};

/** Where Redis is and how qrfleet's keys are named there; built from config by `redisTarget`. */
export interface RedisTarget {
  /** A standalone Redis, or any node of a Redis Cluster (the others are discovered from it). */
  url: string;
  cluster: boolean;
  /** QRFLEET_REDIS_PREFIX as set; the keys use `keyPrefix(target)`. */
  prefix: string;
}

export const redisTarget = (config: Pick<Config, "REDIS_URL" | "REDIS_CLUSTER" | "QRFLEET_REDIS_PREFIX">): RedisTarget => ({
  url: config.REDIS_URL,
  cluster: config.REDIS_CLUSTER,
  prefix: config.QRFLEET_REDIS_PREFIX,
});

/**
 * A cluster runs a multi-key command or script only when all its keys hash to one slot. BullMQ's
 * scripts touch several keys of a queue, and the pace script an instance's key and its host's, so
 * in a cluster the whole prefix is a hash tag. A standalone Redis keeps the plain prefix, so the
 * keys of an existing fleet stay where they are.
 */
export const keyPrefix = (target: RedisTarget): string => (target.cluster ? `{${target.prefix}}` : target.prefix);

export type RedisClient = Redis | Cluster;

export function redisOptions(redisUrl: string, forWorker: boolean): RedisOptions {
  return {
    // Workers block on Redis and must never give up a command (BullMQ requirement).
    maxRetriesPerRequest: forWorker ? null : 3,
    enableReadyCheck: true,
    connectTimeout: 10_000,
    retryStrategy: reconnectDelay,
    lazyConnect: false,
    ...parseRedisUrl(redisUrl),
  };
}

const reconnectDelay = (times: number) => Math.min(200 * 2 ** Math.min(times, 6), 10_000);

function parseRedisUrl(redisUrl: string): RedisOptions {
  const u = new URL(redisUrl);
  return {
    host: u.hostname,
    port: Number(u.port || 6379),
    username: u.username ? decodeURIComponent(u.username) : undefined,
    password: u.password ? decodeURIComponent(u.password) : undefined,
    db: u.pathname.length > 1 ? Number(u.pathname.slice(1)) : 0,
    tls: u.protocol === "rediss:" ? {} : undefined,
  };
}

function clusterOptions(redisUrl: string, forWorker: boolean): ClusterOptions {
  const { host: _host, port: _port, db: _db, retryStrategy: _each, ...node } = redisOptions(redisUrl, forWorker);
  return {
    redisOptions: node,
    clusterRetryStrategy: reconnectDelay,
    enableReadyCheck: true,
    // Nodes are reached by the names the cluster announces: a managed cluster's TLS certificate
    // names its hosts, not their addresses, so resolving them first would fail verification.
    dnsLookup: (address, callback) => callback(null, address),
  };
}

/** The CLIENT SETNAME of a daemon's pub/sub connection (cancels and instance changes). */
export const subscriberName = (prefix: string) => `${prefix}:subscriber`;

/**
 * A connection of its own; in a cluster an ioredis `Cluster` seeded with the URL's node. `name`, if
 * given, is its CLIENT SETNAME: how `CLIENT LIST` tells it apart.
 */
export function createRedis(target: RedisTarget, forWorker = true, name?: string): RedisClient {
  const named = name === undefined ? {} : { connectionName: name };
  if (!target.cluster) return new Redis({ ...redisOptions(target.url, forWorker), ...named });
  const { hostname, port } = new URL(target.url);
  const options = clusterOptions(target.url, forWorker);
  return new Cluster([{ host: hostname, port: Number(port || 6379) }], { ...options, redisOptions: { ...options.redisOptions, ...named } });
}

/**
 * What BullMQ workers connect with. Options make each worker open its own connections; a cluster
 * must be handed as a client, which each worker duplicates (and closes) for itself, so the caller
 * closes only that client.
 */
export function workerConnection(target: RedisTarget): { connection: ConnectionOptions; close(): void } {
  if (!target.cluster) return { connection: redisOptions(target.url, true), close() {} };
  const client = createRedis(target, true);
  // Only a template: the workers' own duplicates report the same failures through worker.on("error").
  client.on("error", () => undefined);
  return { connection: client as ConnectionOptions, close: () => client.disconnect() };
}

export interface Queues {
  session: Queue<SessionJob>;
  notify: Queue<NotifyJob>;
  sweep: Queue<SweepJob>;
  settings: Queue<SettingsJob>;
  /** The prefix of every key qrfleet writes (`keyPrefix`). */
  prefix: string;
  connection: RedisClient;
  close(): Promise<void>;
}

export function createQueues(target: RedisTarget): Queues {
  const connection = createRedis(target, false);
  const prefix = keyPrefix(target);
  const opts = { connection: connection as ConnectionOptions, prefix };
  const session = new Queue<SessionJob>(QUEUE.session, { ...opts, defaultJobOptions: SESSION_JOB_OPTIONS });
  const notify = new Queue<NotifyJob>(QUEUE.notify, { ...opts, defaultJobOptions: NOTIFY_JOB_OPTIONS });
  const sweep = new Queue<SweepJob>(QUEUE.sweep, { ...opts, defaultJobOptions: SWEEP_JOB_OPTIONS });
  const settings = new Queue<SettingsJob>(QUEUE.settings, { ...opts, defaultJobOptions: SETTINGS_JOB_OPTIONS });
  const all = [session, notify, sweep, settings];
  for (const q of all) q.on("error", () => {});
  return {
    session,
    notify,
    sweep,
    settings,
    prefix,
    connection,
    async close() {
      await Promise.allSettled(all.map((q) => q.close()));
      connection.disconnect();
    },
  };
}

export async function addSessionJob(queues: Queues, job: SessionJob, delayMs = 0): Promise<void> {
  await queues.session.add("attempt", job, { jobId: sessionJobId(job.sessionId, job.attempt), delay: Math.max(0, delayMs) });
}

/** First attempts of many sessions, in chunks so no single Redis call carries thousands. */
export async function addSessionJobs(queues: Queues, jobs: readonly SessionJob[]): Promise<void> {
  for (let i = 0; i < jobs.length; i += 1000) {
    await queues.session.addBulk(
      jobs.slice(i, i + 1000).map((job) => ({ name: "attempt", data: job, opts: { jobId: sessionJobId(job.sessionId, job.attempt) } })),
    );
  }
}

/** One job per delivery, due now or at `dueAt` (a lease that runs out later). */
export async function addNotifyJobs(queues: Queues, deliveries: ReadonlyArray<string | { id: string; dueAt: Date }>): Promise<void> {
  if (deliveries.length === 0) return;
  const now = Date.now();
  await queues.notify.addBulk(
    deliveries.map((d) => {
      const deliveryId = typeof d === "string" ? d : d.id;
      const delay = typeof d === "string" ? 0 : Math.max(0, d.dueAt.getTime() - now);
      return { name: "deliver", data: { deliveryId }, opts: { jobId: notifyJobId(deliveryId), delay } };
    }),
  );
}

/** The settings check of one re-link, due at its time. */
export async function addSettingsJob(queues: Queues, job: SettingsJob): Promise<void> {
  await queues.settings.add("check", job, { jobId: settingsJobId(job), delay: Math.max(0, job.dueAt - Date.now()) });
}
