import type { QrTransport, SessionStatus, SessionTrigger } from "../../db.js";
import type { FailureReason, AttemptOutcome } from "../../greenapi/types.js";
import { maskSecrets } from "../../log.js";
import { kindsWanting } from "../../notify/kinds/index.js";
import { storedPayload } from "../../notify/outbox.js";
import { recipientsSql } from "../../notify/routing.js";
import type { InstanceEventType } from "../../notify/types.js";
import { backoffDelayMs } from "./backoff.js";
import type { FleetContext } from "../context.js";
import { unlinkedSinceSql } from "../instances/instance-state.js";

/**
 * One worker run of one session attempt. Every write is fenced by `runId`: if another run has
 * taken the session over (a stalled job recovered twice) or it was cancelled, writes are refused
 * and the run stops. This is what makes BullMQ's at-least-once delivery safe. Each write is one
 * statement: an attempt starts and ends about a hundred times a second in a fleet of 10,000.
 */
export interface Claim {
  runId: string;
  resumed: boolean;
  session: {
    id: string;
    instanceId: string;
    trigger: SessionTrigger;
    attempt: number;
    maxAttempts: number;
    backoffBaseMs: number;
    backoffMaxMs: number;
    /** When the trigger asked for the session (its first QR is timed from it). */
    createdAt: Date;
  };
  /** QR codes stored for this attempt before this run (a resumed attempt): its first was emailed then. */
  attemptHasQr: boolean;
  instance: {
    id: string;
    apiUrl: string;
    idInstance: string;
    tokenCiphertext: Uint8Array;
    label: string | null;
    expectedPhone: string | null;
    qrTransport: QrTransport;
  };
}

/** Failures a later attempt may fix; the others need a human (a new token, a new instance). */
const RETRYABLE: ReadonlySet<FailureReason> = new Set([
  "provider_error", "protocol_error", "connection_lost", "silent", "too_long", "qr_flood",
]);

/**
 * Many claims per statement: a fleet's sessions start hundreds a second. The claimed sessions
 * (with their instance) and the attempts' resume counts come back as two lists, not a join of
 * two CTEs (the planner cannot size those and loops over them).
 */
const CLAIM_SQL = `
  WITH input AS (
    SELECT * FROM unnest($1::uuid[], $2::int[], $3::uuid[]) AS t(session_id, attempt, run_id)
  ), s AS (
    UPDATE "QrSession" q SET status = 'running', "runId" = i.run_id, "startedAt" = COALESCE(q."startedAt", now()), "updatedAt" = now()
    FROM input i WHERE q.id = i.session_id AND q.attempt = i.attempt AND q.status IN ('queued', 'running')
    RETURNING q.id, q."instanceId", q.trigger::text, q.attempt, q."maxAttempts", q."backoffBaseMs", q."backoffMaxMs", q."runId",
      EXISTS (SELECT 1 FROM "QrCode" c WHERE c."sessionId" = q.id AND c.attempt = q.attempt) AS "attemptHasQr",
      -- Epoch ms: node-postgres would read a zone-less timestamp in the host's zone.
      (extract(epoch FROM q."createdAt") * 1000)::float8 AS "createdMs"
  ), a AS (
    INSERT INTO "QrAttempt" (id, "sessionId", number, worker, "startedAt")
    SELECT gen_random_uuid(), s.id, s.attempt, $4, now() FROM s
    ON CONFLICT ("sessionId", number) DO UPDATE SET resumes = "QrAttempt".resumes + 1, worker = EXCLUDED.worker
    RETURNING "sessionId", resumes
  )
  SELECT 's' AS row, s.*, NULL::int AS resumes, i."apiUrl", i."idInstance", i."tokenCiphertext", i.label, i."expectedPhone", i."qrTransport"::text
  FROM s JOIN "Instance" i ON i.id = s."instanceId"
  UNION ALL
  SELECT 'a', "sessionId", NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, resumes, NULL, NULL, NULL, NULL, NULL, NULL FROM a`;

interface ClaimRow {
  row: "s" | "a";
  id: string; instanceId: string; trigger: SessionTrigger; attempt: number; maxAttempts: number; backoffBaseMs: number;
  backoffMaxMs: number; runId: string; attemptHasQr: boolean; createdMs: number; resumes: number | null; apiUrl: string; idInstance: string; tokenCiphertext: Buffer;
  label: string | null; expectedPhone: string | null; qrTransport: QrTransport;
}

export interface ClaimRequest {
  sessionId: string;
  attempt: number;
  runId: string;
}

/**
 * Takes each attempt for its run, or null where the session ended or moved on to another attempt.
 * Two runs asking for one session in the same batch: the later one gets it, as it would one
 * statement later, and the earlier is told it is stale.
 */
export async function claimAttempts(ctx: FleetContext, requests: readonly ClaimRequest[], worker: string): Promise<Array<Claim | null>> {
  const last = new Map<string, ClaimRequest>();
  for (const r of requests) last.set(r.sessionId, r);
  const unique = [...last.values()];
  const { rows } = await ctx.sql.query<ClaimRow>({
    name: "qrfleet-claim-v3",
    text: CLAIM_SQL,
    values: [unique.map((r) => r.sessionId), unique.map((r) => r.attempt), unique.map((r) => r.runId), worker],
  });
  const resumes = new Map(rows.filter((r) => r.row === "a").map((r) => [r.id, r.resumes ?? 0]));
  const claims = new Map<string, Claim>();
  for (const r of rows) {
    if (r.row !== "s") continue;
    claims.set(r.runId, {
      runId: r.runId,
      resumed: (resumes.get(r.id) ?? 0) > 0,
      attemptHasQr: r.attemptHasQr,
      session: {
        id: r.id, instanceId: r.instanceId, trigger: r.trigger, attempt: r.attempt, maxAttempts: r.maxAttempts,
        backoffBaseMs: r.backoffBaseMs, backoffMaxMs: r.backoffMaxMs, createdAt: new Date(r.createdMs),
      },
      instance: {
        id: r.instanceId, apiUrl: r.apiUrl, idInstance: r.idInstance, tokenCiphertext: r.tokenCiphertext, label: r.label,
        expectedPhone: r.expectedPhone, qrTransport: r.qrTransport,
      },
    });
  }
  return requests.map((r) => claims.get(r.runId) ?? null);
}

function phoneMismatch(expected: string | null, actual: string | null): boolean {
  return expected !== null && actual !== null && expected !== actual;
}

type Decision = { status: SessionStatus; next?: { attempt: number; delayMs: number; dueAt: Date } };

/** What an attempt's outcome means for the session: its next status and, maybe, a next attempt. */
function decide(claim: Claim, outcome: AttemptOutcome, now: Date): Decision {
  const { session, instance } = claim;
  const retryable = outcome.kind === "timed_out" || (outcome.kind === "failed" && RETRYABLE.has(outcome.reason));
  if (retryable && session.attempt < session.maxAttempts) {
    const delayMs = backoffDelayMs(session.attempt + 1, session.backoffBaseMs, session.backoffMaxMs);
    return { status: "queued", next: { attempt: session.attempt + 1, delayMs, dueAt: new Date(now.getTime() + delayMs) } };
  }
  switch (outcome.kind) {
    case "authorized":
      return { status: phoneMismatch(instance.expectedPhone, outcome.phone) ? "wrong_number" : "authorized" };
    case "already_logged":
    case "timed_out":
    case "cancelled":
    case "failed":
      return { status: outcome.kind };
  }
}

function outcomeError(outcome: AttemptOutcome): { errorCode: string | null; error: string | null } {
  if (outcome.kind === "failed") return { errorCode: outcome.reason, error: maskSecrets(outcome.message).slice(0, 2000) };
  if (outcome.kind === "cancelled") return { errorCode: "cancelled", error: maskSecrets(outcome.reason).slice(0, 2000) };
  if (outcome.kind === "timed_out") return { errorCode: "timed_out", error: "the scan window passed with no scan" };
  return { errorCode: null, error: null };
}

/** How the instance changes: linked again, or flagged for a human (null: neither). */
function instanceChange(status: SessionStatus, outcome: AttemptOutcome): { linked: boolean; attention: string | null } {
  if (status === "authorized" || status === "already_logged") return { linked: true, attention: null };
  if (status === "wrong_number") return { linked: false, attention: "wrong_number" };
  if (outcome.kind === "failed" && (outcome.reason === "invalid_token" || outcome.reason === "unknown_instance")) {
    return { linked: false, attention: outcome.reason };
  }
  return { linked: false, attention: null };
}

const EVENT_OF: Partial<Record<SessionStatus, InstanceEventType>> = {
  authorized: "session.authorized",
  already_logged: "session.already_logged",
  wrong_number: "session.wrong_number",
  timed_out: "session.timed_out",
  failed: "session.failed",
};

/** The event an outcome announces; an attempt that will be retried is announced too (webhooks only). */
function announcement(ctx: FleetContext, claim: Claim, d: Decision, outcome: AttemptOutcome, err: ReturnType<typeof outcomeError>) {
  const { next } = d;
  const type = next ? (outcome.kind === "timed_out" ? "session.timed_out" : "session.failed") : EVENT_OF[d.status];
  if (!type) return null;
  const phone = outcome.kind === "authorized" ? outcome.phone : null;
  const input = {
    type,
    final: next === undefined,
    data: {
      status: d.status, attempts: claim.session.attempt, ...err, phone, expectedPhone: claim.instance.expectedPhone,
      ...(next && { nextAttempt: next.attempt, nextAttemptAt: next.dueAt.toISOString() }),
      ...(d.status === "wrong_number" && { loggedOut: ctx.config.QRFLEET_LOGOUT_ON_WRONG_NUMBER }),
    },
  };
  return { type, payload: storedPayload(input), kinds: kindsWanting(input), heldKinds: kindsWanting({ ...input, digest: true }) };
}

/** An attempt's QR codes, counted when it ends (not per image: that row would be written hundreds of times a second). */
export const ATTEMPT_QR_COUNT = `(SELECT count(*)::int FROM "QrCode" c WHERE c."sessionId" = a."sessionId" AND c.attempt = a.number)`;

const FINISH_SQL = `
  WITH s AS (
    SELECT id FROM "QrSession" WHERE id = $1::uuid AND status = 'running' AND "runId" = $2::uuid FOR UPDATE
  ), att AS (
    UPDATE "QrAttempt" a SET "endedAt" = now(), outcome = $4, "errorCode" = $5, error = $6, "qrCount" = ${ATTEMPT_QR_COUNT}
    FROM s WHERE a."sessionId" = s.id AND a.number = $3::int
  ), upd AS (
    UPDATE "QrSession" q SET status = $7::"SessionStatus", attempt = COALESCE($8::int, q.attempt),
      "dueAt" = COALESCE($9::timestamptz, q."dueAt"), "runId" = NULL, "errorCode" = $5, error = $6,
      "endedAt" = CASE WHEN $8::int IS NULL THEN now() ELSE q."endedAt" END,
      "accountData" = COALESCE($10::jsonb, q."accountData"), phone = COALESCE($11, q.phone), "updatedAt" = now()
    FROM s WHERE q.id = s.id
  ), inst AS (
    UPDATE "Instance" i SET
      "lastState" = CASE WHEN $13::boolean THEN 'authorized' ELSE i."lastState" END,
      "lastStateAt" = CASE WHEN $13::boolean THEN now() ELSE i."lastStateAt" END,
      "unlinkedSince" = CASE WHEN $13::boolean THEN ${unlinkedSinceSql("'authorized'", "now()")} ELSE i."unlinkedSince" END,
      -- "Already linked" after a wrong number means the wrong phone is still on it: the flag stays.
      attention = CASE WHEN $13::boolean
        THEN (CASE WHEN $7::text = 'already_logged' AND i.attention = 'wrong_number' THEN i.attention END)
        ELSE COALESCE($14, i.attention) END,
      "updatedAt" = now()
    FROM s WHERE i.id = $12::uuid AND ($13::boolean OR $14::text IS NOT NULL)
  ), ev AS (
    INSERT INTO "Event" (id, type, "instanceId", "sessionId", attempt, payload, "createdAt")
    SELECT gen_random_uuid(), $15, $12::uuid, s.id, $3::int, $16::jsonb, now() FROM s WHERE $15::text IS NOT NULL
    RETURNING id, (extract(epoch FROM "createdAt") * 1000)::float8 AS created_ms
  ), del AS (
    INSERT INTO "Delivery" (id, "eventId", "channelId", status, "nextTryAt", "createdAt", "updatedAt")
    SELECT gen_random_uuid(), ev.id, r.id, CASE WHEN r.held THEN 'held' ELSE 'pending' END::"DeliveryStatus",
      now() + $19::int * interval '1 millisecond', now(), now()
    FROM ev CROSS JOIN LATERAL ${recipientsSql("$12::uuid", "$3::int", "$18::int")} r
    WHERE r.kind::text = ANY(CASE WHEN r.held THEN $20::text[] ELSE $17::text[] END)
    RETURNING id, "channelId", status
  )
  SELECT (SELECT count(*) FROM s)::int AS ours, (SELECT id FROM ev) AS event_id, (SELECT created_ms FROM ev) AS created_ms,
    COALESCE((SELECT json_agg(json_build_array(id, "channelId")) FROM del WHERE status = 'pending'), '[]'::json) AS deliveries`;

export interface RecordedEvent {
  id: string;
  type: InstanceEventType;
  createdAt: Date;
  /** The stored payload: what the event's webhooks carry as `data`. */
  data: Record<string, unknown>;
  /** The deliveries to send now; those held for a digest are the digest's. */
  deliveries: Array<{ id: string; channelId: string }>;
}

export interface AttemptEnd {
  stale: boolean;
  status: SessionStatus;
  next?: { attempt: number; delayMs: number };
  event: RecordedEvent | null;
}

/**
 * Records an attempt's outcome: the session either waits for its next attempt or ends. The
 * event's deliveries are leased to this process for `leaseMs`, which sends them itself; after
 * that the reconciler hands whatever is still pending to the notify queue.
 */
export async function finishAttempt(ctx: FleetContext, claim: Claim, outcome: AttemptOutcome, leaseMs: number): Promise<AttemptEnd> {
  const { session, instance } = claim;
  const d = decide(claim, outcome, new Date());
  const err = outcomeError(outcome);
  const change = instanceChange(d.status, outcome);
  const ev = announcement(ctx, claim, d, outcome, err);
  const attemptOutcome = outcome.kind === "failed" ? `failed:${outcome.reason}` : outcome.kind;
  const authorized = outcome.kind === "authorized" ? outcome : null;
  const { rows } = await ctx.sql.query<{ ours: number; event_id: string | null; created_ms: number | null; deliveries: Array<[string, string]> }>({
    name: "qrfleet-finish-v4",
    text: FINISH_SQL,
    values: [
      session.id, claim.runId, session.attempt, attemptOutcome, err.errorCode, err.error, d.status,
      d.next?.attempt ?? null, d.next?.dueAt ?? null,
      authorized && authorized.accountData !== undefined ? JSON.stringify(authorized.accountData) : null, authorized?.phone ?? null,
      instance.id, change.linked, change.attention,
      ev?.type ?? null, ev ? JSON.stringify(ev.payload) : null, ev?.kinds ?? [], ctx.config.QRFLEET_ESCALATE_AFTER, leaseMs,
      ev?.heldKinds ?? [],
    ],
  });
  const row = rows[0]!;
  if (row.ours === 0) return { stale: true, status: d.status, event: null };
  const event = ev && row.event_id && row.created_ms !== null
    ? { id: row.event_id, type: ev.type, createdAt: new Date(row.created_ms), data: ev.payload, deliveries: row.deliveries.map(([id, channelId]) => ({ id, channelId })) }
    : null;
  return { stale: false, status: d.status, ...(d.next && { next: { attempt: d.next.attempt, delayMs: d.next.delayMs } }), event };
}

const HAND_BACK_SQL = `
  WITH q AS (
    UPDATE "QrSession" q SET status = 'queued', "runId" = NULL, "dueAt" = now(), "updatedAt" = now()
    FROM unnest($1::uuid[], $2::uuid[]) AS v(id, run_id)
    WHERE q.id = v.id AND q."runId" = v.run_id AND q.status = 'running'
    RETURNING q.id, q.attempt
  ), counted AS (
    UPDATE "QrAttempt" a SET "qrCount" = ${ATTEMPT_QR_COUNT} FROM q WHERE a."sessionId" = q.id AND a.number = q.attempt
  )
  SELECT id FROM q`;

/**
 * Gives running attempts back to the queue (shutdown, lost lock): the next run resumes each. A
 * daemon stopping with 10,000 sessions hands them all back at once, so this takes many per
 * statement; true for each attempt this run still held.
 */
export async function handBack(ctx: FleetContext, claims: readonly Claim[]): Promise<boolean[]> {
  const { rows } = await ctx.sql.query<{ id: string }>({
    name: "qrfleet-hand-back-v1",
    text: HAND_BACK_SQL,
    values: [claims.map((c) => c.session.id), claims.map((c) => c.runId)],
  });
  const handed = new Set(rows.map((r) => r.id));
  return claims.map((c) => handed.has(c.session.id));
}
