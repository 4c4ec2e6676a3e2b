import type { JobType } from "bullmq";
import type { SessionStatus } from "../db.js";
import type { FleetContext } from "./context.js";
import { SESSION_STATUSES } from "./sessions.js";

/** The fleet at a glance: what `qrfleet status` prints and `GET /api/status` returns. */
export interface FleetStatus {
  instances: {
    total: number;
    enabled: number;
    /** Instances a human must look at (e.g. their token was refused). */
    attention: number;
    /** By last known provider state; "unchecked" for instances never polled. */
    byState: Record<string, number>;
  };
  sessions: Record<SessionStatus, number>;
  /** Job counts per queue, or null when Redis did not answer in time (see queuesError). */
  queues: Record<string, Record<string, number>> | null;
  queuesError?: string;
}

const JOB_TYPES: JobType[] = ["waiting", "active", "delayed", "prioritized", "waiting-children", "failed", "completed"];
/** Status is what an admin looks at when something is wrong: a dead Redis must not hang it. */
const QUEUE_COUNTS_TIMEOUT_MS = 3_000;

export async function fleetStatus(ctx: FleetContext): Promise<FleetStatus> {
  const [instances, sessions, queues] = await Promise.all([instanceCounts(ctx), sessionCounts(ctx), queueCounts(ctx)]);
  return { instances, sessions, ...queues };
}

async function instanceCounts(ctx: FleetContext): Promise<FleetStatus["instances"]> {
  const [byStateRows, total, enabled, attention] = await Promise.all([
    ctx.db.instance.groupBy({ by: ["lastState"], _count: { _all: true } }),
    ctx.db.instance.count(),
    ctx.db.instance.count({ where: { enabled: true } }),
    ctx.db.instance.count({ where: { attention: { not: null } } }),
  ]);
  const byState: Record<string, number> = {};
  for (const row of byStateRows) byState[row.lastState ?? "unchecked"] = row._count._all;
  return { total, enabled, attention, byState };
}

async function sessionCounts(ctx: FleetContext): Promise<Record<SessionStatus, number>> {
  const rows = await ctx.db.qrSession.groupBy({ by: ["status"], _count: { _all: true } });
  const counts = Object.fromEntries(SESSION_STATUSES.map((s) => [s, 0])) as Record<SessionStatus, number>;
  for (const row of rows) counts[row.status] = row._count._all;
  return counts;
}

async function queueCounts(ctx: FleetContext): Promise<Pick<FleetStatus, "queues" | "queuesError">> {
  const { session, notify, sweep } = ctx.queues;
  const all = Promise.all([session, notify, sweep].map(async (q) => [q.name, await q.getJobCounts(...JOB_TYPES)] as const));
  all.catch(() => undefined);
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<"timeout">((resolve) => (timer = setTimeout(() => resolve("timeout"), QUEUE_COUNTS_TIMEOUT_MS)));
  try {
    const result = await Promise.race([all, timeout]);
    if (result === "timeout") return { queues: null, queuesError: `Redis did not answer within ${QUEUE_COUNTS_TIMEOUT_MS} ms` };
    return { queues: Object.fromEntries(result) };
  } catch {
    return { queues: null, queuesError: "Redis is unavailable" };
  } finally {
    clearTimeout(timer);
  }
}
