import { z } from "zod";
import type { Instance, SessionStatus, SessionTrigger } from "../../db.js";
import { isUniqueViolation } from "../../db.js";
import { isUuid } from "../../lib/uuid.js";
import { parseInput } from "../validate.js";
import { addNotifyJobs, addSessionJob, addSessionJobs, sessionJobId } from "../../queues.js";
import { recordEvent } from "../../notify/outbox.js";
import type { FleetContext } from "../context.js";
import { NotFoundError, ValidationError } from "../errors.js";
import { resolveInstance } from "../instances/instances.js";
import { ATTEMPT_QR_COUNT } from "./attempts.js";
import { publishCancel } from "./cancel-bus.js";
import { findOpenSession, instanceSummary, OPEN_STATUSES, SESSION_STATUSES, type SessionWithInstance } from "../instances/open-session.js";


export interface AttemptView {
  number: number;
  startedAt: Date;
  endedAt: Date | null;
  outcome: string | null;
  errorCode: string | null;
  error: string | null;
  qrCount: number;
  resumes: number;
}

export interface SessionView {
  id: string;
  instanceId: string;
  idInstance: string;
  label: string | null;
  trigger: SessionTrigger;
  status: SessionStatus;
  attempt: number;
  maxAttempts: number;
  qrCount: number;
  errorCode: string | null;
  error: string | null;
  phone: string | null;
  dueAt: Date;
  createdAt: Date;
  startedAt: Date | null;
  endedAt: Date | null;
  attempts?: AttemptView[];
}


function toView(s: SessionWithInstance, attempts?: AttemptView[]): SessionView {
  return {
    id: s.id,
    instanceId: s.instanceId,
    idInstance: s.instance.idInstance,
    label: s.instance.label,
    trigger: s.trigger,
    status: s.status,
    attempt: s.attempt,
    maxAttempts: s.maxAttempts,
    qrCount: s.qrCount,
    errorCode: s.errorCode,
    error: s.error,
    phone: s.phone,
    dueAt: s.dueAt,
    createdAt: s.createdAt,
    startedAt: s.startedAt,
    endedAt: s.endedAt,
    ...(attempts && { attempts }),
  };
}

/**
 * Starts a session for the instance, or returns the one already queued or running. The partial
 * unique index decides races between processes: the loser of an insert returns the winner's row.
 */
export async function enqueueSession(
  ctx: FleetContext,
  ref: string | Instance,
  trigger: SessionTrigger,
): Promise<{ session: SessionView; created: boolean }> {
  const inst = typeof ref === "string" ? await resolveInstance(ctx.db, ref) : ref;
  for (let tries = 0; tries < 5; tries++) {
    const open = await findOpenSession(ctx, inst.id);
    if (open) return { session: toView(open), created: false };
    try {
      const created = await ctx.db.qrSession.create({
        data: {
          instanceId: inst.id,
          trigger,
          attempt: 1,
          maxAttempts: inst.maxAttempts ?? ctx.config.QRFLEET_SESSION_ATTEMPTS,
          backoffBaseMs: inst.backoffBaseMs ?? ctx.config.QRFLEET_BACKOFF_BASE_MS,
          backoffMaxMs: inst.backoffMaxMs ?? ctx.config.QRFLEET_BACKOFF_MAX_MS,
        },
        include: instanceSummary,
      });
      // If this add is lost (crash, Redis down), the reconciler re-adds it from PostgreSQL.
      await addSessionJob(ctx.queues, { sessionId: created.id, attempt: 1 }).catch((err) =>
        ctx.log.warn({ err, sessionId: created.id }, "session queued in PostgreSQL but not yet in Redis"),
      );
      ctx.events.emit("session:transition", {
        sessionId: created.id, instanceId: inst.id, from: null, to: "queued", trigger, attempt: 1, reason: trigger,
      });
      return { session: toView(created), created: true };
    } catch (err) {
      if (!isUniqueViolation(err)) throw err;
    }
  }
  throw new Error("could not enqueue: the instance's open session kept changing");
}

/** Sessions started at once for many instances; the others already had one open. */
export interface BulkEnqueue {
  created: number;
  alreadyOpen: number;
  /** Ids given that are no instance (only when ids were given). */
  notFound?: number;
}

/** Which instances a bulk enqueue takes: these ids, or every enabled one not known to be linked. */
export type InstanceSelection = { ids: readonly string[] } | { allUnlinked: true };

/**
 * "Unlinked" is what the fleet last knew: logged out, or never checked yet (just imported); an
 * instance that turns out to be linked ends its session `already_logged` within a second.
 * $1: the instance ids, or null for every unlinked one.
 */
const BULK_ENQUEUE_SQL = `
  WITH chosen AS (
    SELECT i.* FROM "Instance" i
    WHERE CASE WHEN $1::uuid[] IS NULL
      THEN i.enabled AND i.attention IS NULL AND (i."lastState" IS NULL OR i."lastState" = 'notAuthorized')
      ELSE i.id = ANY($1::uuid[]) END
  ),
  created AS (
    INSERT INTO "QrSession" (id, "instanceId", trigger, status, attempt, "maxAttempts", "backoffBaseMs", "backoffMaxMs", "dueAt", "createdAt", "updatedAt")
    SELECT gen_random_uuid(), c.id, $2::"SessionTrigger", 'queued', 1, COALESCE(c."maxAttempts", $3), COALESCE(c."backoffBaseMs", $4),
      COALESCE(c."backoffMaxMs", $5), now(), now(), now()
    FROM chosen c
    ON CONFLICT DO NOTHING
    RETURNING id, "instanceId"
  ),
  -- Read before the insert (one snapshot): the sessions that made it skip an instance. Only when $6.
  open AS (
    SELECT s.id, s."instanceId" FROM "QrSession" s
    WHERE $6::bool AND s."instanceId" IN (SELECT id FROM chosen) AND s.status IN ('queued', 'running')
  )
  SELECT (SELECT count(*) FROM chosen)::int AS chosen, COALESCE((SELECT json_agg(json_build_array(id, "instanceId")) FROM created), '[]'::json) AS created,
    COALESCE((SELECT json_agg(json_build_array(id, "instanceId")) FROM open), '[]'::json) AS open`;

/**
 * Starts a session for each selected instance that has none open, in one statement, and queues
 * their first attempts in bulk: 10,000 instances take about a second. The partial unique index
 * decides races with any other enqueue, as it does for one instance.
 */
export async function enqueueSessions(ctx: FleetContext, which: InstanceSelection, trigger: SessionTrigger): Promise<BulkEnqueue> {
  const ids = "ids" in which ? [...new Set(which.ids)] : null;
  if (ids && !ids.every(isUuid)) throw new ValidationError("each instance must be an instance id (a UUID)");
  if (ids?.length === 0) return { created: 0, alreadyOpen: 0, notFound: 0 };
  const { chosen, created } = await bulkEnqueue(ctx, ids, trigger, false);
  return { created: created.length, alreadyOpen: chosen - created.length, ...(ids && { notFound: ids.length - chosen }) };
}

/**
 * `enqueueSessions` for these instances (ids the caller read from the database), saying which
 * session each one has now: the one started, or the one that was open. An instance whose open
 * session committed while the statement ran, or that is gone, is not in the map.
 */
export async function enqueueSessionsFor(
  ctx: FleetContext,
  instanceIds: readonly string[],
  trigger: SessionTrigger,
): Promise<Map<string, { sessionId: string; created: boolean }>> {
  const sessions = new Map<string, { sessionId: string; created: boolean }>();
  if (instanceIds.length === 0) return sessions;
  const { created, open } = await bulkEnqueue(ctx, [...new Set(instanceIds)], trigger, true);
  for (const [sessionId, instanceId] of open) sessions.set(instanceId, { sessionId, created: false });
  for (const [sessionId, instanceId] of created) sessions.set(instanceId, { sessionId, created: true });
  return sessions;
}

async function bulkEnqueue(ctx: FleetContext, ids: string[] | null, trigger: SessionTrigger, withOpen: boolean) {
  const { config } = ctx;
  const { rows } = await ctx.sql.query<{ chosen: number; created: Array<[string, string]>; open: Array<[string, string]> }>(
    BULK_ENQUEUE_SQL,
    [ids, trigger, config.QRFLEET_SESSION_ATTEMPTS, config.QRFLEET_BACKOFF_BASE_MS, config.QRFLEET_BACKOFF_MAX_MS, withOpen],
  );
  const { chosen, created, open } = rows[0]!;
  // If this add is lost (crash, Redis down), the reconciler re-adds them from PostgreSQL.
  await addSessionJobs(ctx.queues, created.map(([sessionId]) => ({ sessionId, attempt: 1 }))).catch((err) =>
    ctx.log.warn({ err, sessions: created.length }, "sessions queued in PostgreSQL but not yet in Redis"),
  );
  for (const [sessionId, instanceId] of created) {
    ctx.events.emit("session:transition", { sessionId, instanceId, from: null, to: "queued", trigger, attempt: 1, reason: trigger });
  }
  return { chosen, created, open };
}

export async function showSession(ctx: FleetContext, id: string): Promise<SessionView> {
  const include = { ...instanceSummary, attempts: { orderBy: { number: "asc" as const } } };
  const s = isUuid(id) ? await ctx.db.qrSession.findUnique({ where: { id }, include }) : null;
  if (!s) throw new NotFoundError(`no session ${JSON.stringify(id)}`);
  // A running attempt's QR codes are counted when it ends; until then, here.
  const live = s.attempts.some((a) => a.endedAt === null)
    ? await ctx.db.qrCode.count({ where: { sessionId: s.id, attempt: s.attempt } })
    : 0;
  return toView(s, s.attempts.map(({ number, startedAt, endedAt, outcome, errorCode, error, qrCount, resumes }) => ({
    number, startedAt, endedAt, outcome, errorCode, error, qrCount: endedAt === null && number === s.attempt ? live : qrCount, resumes,
  })));
}

const listFilter = z.object({
  instance: z.string().optional(),
  status: z.enum(SESSION_STATUSES, `must be one of ${SESSION_STATUSES.join(", ")}`).optional(),
  limit: z.number().int().min(1).max(10_000).optional(),
});

export async function listSessions(ctx: FleetContext, input: { instance?: string; status?: string; limit?: number } = {}): Promise<SessionView[]> {
  const filter = parseInput(listFilter, input);
  const instanceId = filter.instance ? (await resolveInstance(ctx.db, filter.instance)).id : undefined;
  const rows = await ctx.db.qrSession.findMany({
    where: { ...(instanceId && { instanceId }), ...(filter.status && { status: filter.status }) },
    include: instanceSummary,
    orderBy: { createdAt: "desc" },
    take: Math.min(filter.limit ?? 100, 10_000),
  });
  return rows.map((r) => toView(r));
}

/** Ends an open session for good; the worker running it (in any process) is told to stop. */
export async function cancelSession(ctx: FleetContext, id: string, reason = "cancelled by an admin"): Promise<SessionView> {
  const current = await showSession(ctx, id);
  const ended = await endOpenSession(ctx, current, "cancelled", { errorCode: "cancelled", error: reason });
  return ended ? showSession(ctx, id) : current;
}

/** The provider says the instance is authorized (its webhook): a running session is done. Returns the session ended, if any. */
export async function endSessionAuthorizedByProvider(ctx: FleetContext, instanceId: string): Promise<{ id: string } | null> {
  const open = await findOpenSession(ctx, instanceId);
  if (!open) return null;
  const ended = await endOpenSession(ctx, toView(open), "authorized", { errorCode: null, error: null, event: "session.authorized" });
  return ended ? { id: open.id } : null;
}

async function endOpenSession(
  ctx: FleetContext,
  s: SessionView,
  status: SessionStatus,
  opts: { errorCode: string | null; error: string | null; event?: "session.authorized" },
): Promise<boolean> {
  const deliveryIds = await ctx.db.$transaction(async (tx) => {
    const { count } = await tx.qrSession.updateMany({
      where: { id: s.id, status: { in: [...OPEN_STATUSES] } },
      data: { status, endedAt: new Date(), runId: null, errorCode: opts.errorCode, error: opts.error },
    });
    if (count === 0) return null;
    await tx.$executeRawUnsafe(
      `UPDATE "QrAttempt" a SET "qrCount" = ${ATTEMPT_QR_COUNT} WHERE a."sessionId" = $1::uuid AND a."endedAt" IS NULL`,
      s.id,
    );
    await tx.qrAttempt.updateMany({
      where: { sessionId: s.id, endedAt: null },
      data: { endedAt: new Date(), outcome: status, errorCode: opts.errorCode, error: opts.error },
    });
    if (!opts.event) return [];
    return recordEvent(
      tx,
      { type: opts.event, instanceId: s.instanceId, sessionId: s.id, attempt: s.attempt, data: { source: "provider" } },
      { escalateAfter: ctx.config.QRFLEET_ESCALATE_AFTER },
    );
  });
  if (deliveryIds === null) return false;
  await Promise.all([
    publishCancel(ctx.queues, s.id, s.attempt),
    ctx.queues.session.remove(sessionJobId(s.id, s.attempt)).catch(() => 0),
    addNotifyJobs(ctx.queues, deliveryIds),
  ]);
  ctx.events.emit("session:transition", {
    sessionId: s.id, instanceId: s.instanceId, from: s.status, to: status, trigger: s.trigger, attempt: s.attempt, reason: opts.error ?? undefined,
  });
  return true;
}
