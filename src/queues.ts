import { Queue, type ConnectionOptions, type JobsOptions } from "bullmq";
import { Redis, type RedisOptions } from "ioredis";

/** Queue names, job payloads and default options: the only place that knows how jobs look. */
export const QUEUE = {
  session: "qr-session",
  notify: "notify",
  sweep: "sweep",
} as const;

export interface SessionJob {
  sessionId: string;
  attempt: number;
}
export interface NotifyJob {
  deliveryId: string;
}
export type SweepJob = { kind: "sweep" } | { kind: "reauth"; instanceId: string } | { kind: "retention" };

/** BullMQ job ids may not contain ":"; ours are deterministic so a re-add is a no-op. */
export const sessionJobId = (sessionId: string, attempt: number) => `s-${sessionId}-${attempt}`;
export const notifyJobId = (deliveryId: string) => `d-${deliveryId}`;
export const reauthSchedulerId = (instanceId: string) => `reauth-${instanceId}`;
export const SWEEP_SCHEDULER_ID = "fleet-sweep";
export const RETENTION_SCHEDULER_ID = "qr-retention";

/** Every queue keeps a bounded history (CONVENTIONS: every queue has a bound on what it keeps). */
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

export function redisOptions(redisUrl: string, forWorker: boolean): RedisOptions {
  return {
    // Workers block on Redis and must never give up a command (BullMQ requirement).
    maxRetriesPerRequest: forWorker ? null : 3,
    enableReadyCheck: true,
    connectTimeout: 10_000,
    retryStrategy: (times) => Math.min(200 * 2 ** Math.min(times, 6), 10_000),
    lazyConnect: false,
    ...parseRedisUrl(redisUrl),
  };
}

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

export function createRedis(redisUrl: string, forWorker = true): Redis {
  return new Redis(redisOptions(redisUrl, forWorker));
}

export interface Queues {
  session: Queue<SessionJob>;
  notify: Queue<NotifyJob>;
  sweep: Queue<SweepJob>;
  prefix: string;
  connection: Redis;
  close(): Promise<void>;
}

export function createQueues(redisUrl: string, prefix: string): Queues {
  const connection = createRedis(redisUrl, false);
  const opts = { connection: connection as ConnectionOptions, prefix };
  const session = new Queue<SessionJob>(QUEUE.session, { ...opts, defaultJobOptions: SESSION_JOB_OPTIONS });
  const notify = new Queue<NotifyJob>(QUEUE.notify, { ...opts, defaultJobOptions: NOTIFY_JOB_OPTIONS });
  const sweep = new Queue<SweepJob>(QUEUE.sweep, { ...opts, defaultJobOptions: SWEEP_JOB_OPTIONS });
  for (const q of [session, notify, sweep]) q.on("error", () => {});
  return {
    session,
    notify,
    sweep,
    prefix,
    connection,
    async close() {
      await Promise.allSettled([session.close(), notify.close(), sweep.close()]);
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
