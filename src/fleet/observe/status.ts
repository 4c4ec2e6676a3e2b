import type { JobType } from "bullmq";
import type { SessionStatus } from "../../db.js";
import type { FleetContext } from "../context.js";
import { LONGEST_UNLINKED_SECONDS_SQL, openAlertSql } from "./fleet-sql.js";
import { SESSION_STATUSES } from "../instances/open-session.js";
import { TimedOutError, within } from "../../lib/deadline.js";

/** The fleet at a glance: what `qrfleet status` prints and `GET /api/status` returns. */
export interface FleetStatus {
  instances: {
    total: number;
    enabled: number;
    /** Instances a human must look at (e.g. their token was refused). */
    attention: number;
    /** By last known provider state; "unchecked" for instances never polled. */
    byState: Record<string, number>;
    /** Seconds the enabled instance unlinked the longest has been so (0: none is), as the metric reports it. */
    longestUnlinkedSeconds: number;
  };
  /** Operator alerts raised and not yet recovered. */
  alertsOpen: number;
  /** Operators' channels: failing (every recent try failed) and disabled (410 Gone, failing too long). */
  channels: { failing: number; disabled: number };
  sessions: Record<SessionStatus, number>;
  /** Job counts per queue, or null when Redis did not answer in time (see queuesError). */
  queues: Record<string, Record<string, number>> | null;
  queuesError?: string;
}

const JOB_TYPES: JobType[] = ["waiting", "active", "delayed", "prioritized", "waiting-children", "failed", "completed"];
/** Status is what an admin looks at when something is wrong: a dead Redis must not hang it. */
const QUEUE_COUNTS_TIMEOUT_MS = 3_000;

export async function fleetStatus(ctx: FleetContext): Promise<FleetStatus> {
  const [instances, sessions, queues, others] = await Promise.all([instanceCounts(ctx), sessionCounts(ctx), queueCounts(ctx), otherCounts(ctx)]);
  return { instances, sessions, ...others, ...queues };
}

/** One pass over the instances, grouped by state: its cost grows with the states, not with the fleet's size in round trips. */
const INSTANCES_SQL = `
  SELECT COALESCE("lastState", 'unchecked') AS state, count(*)::int AS total,
    (count(*) FILTER (WHERE enabled))::int AS enabled, (count(*) FILTER (WHERE attention IS NOT NULL))::int AS attention,
    ${LONGEST_UNLINKED_SECONDS_SQL} AS "unlinkedSeconds"
  FROM "Instance" GROUP BY 1`;

async function instanceCounts(ctx: FleetContext): Promise<FleetStatus["instances"]> {
  type Row = { state: string; total: number; enabled: number; attention: number; unlinkedSeconds: number };
  const { rows } = await ctx.sql.query<Row>(INSTANCES_SQL);
  const out: FleetStatus["instances"] = { total: 0, enabled: 0, attention: 0, byState: {}, longestUnlinkedSeconds: 0 };
  for (const r of rows) {
    out.byState[r.state] = r.total;
    out.total += r.total;
    out.enabled += r.enabled;
    out.attention += r.attention;
    out.longestUnlinkedSeconds = Math.max(out.longestUnlinkedSeconds, Math.round(r.unlinkedSeconds));
  }
  return out;
}

const OTHERS_SQL = `
  SELECT (SELECT count(*) FROM "StateEpisode" e WHERE ${openAlertSql("e")})::int AS "alertsOpen",
    (SELECT count(*) FROM "Channel" WHERE enabled AND "failingSince" IS NOT NULL)::int AS failing,
    (SELECT count(*) FROM "Channel" WHERE NOT enabled)::int AS disabled`;

async function otherCounts(ctx: FleetContext): Promise<Pick<FleetStatus, "alertsOpen" | "channels">> {
  const { rows } = await ctx.sql.query<{ alertsOpen: number; failing: number; disabled: number }>(OTHERS_SQL);
  const r = rows[0]!;
  return { alertsOpen: r.alertsOpen, channels: { failing: r.failing, disabled: r.disabled } };
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
  try {
    return { queues: Object.fromEntries(await within(all, QUEUE_COUNTS_TIMEOUT_MS, `Redis did not answer within ${QUEUE_COUNTS_TIMEOUT_MS} ms`)) };
  } catch (err) {
    return { queues: null, queuesError: err instanceof TimedOutError ? err.message : "Redis is unavailable" };
  }
}
