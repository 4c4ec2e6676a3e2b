import type { Instance, Prisma, QrSession, SessionStatus } from "../db.js";
import type { FailureReason, QrImage, SessionOutcome } from "../greenapi/types.js";
import { maskSecrets } from "../log.js";
import { recordEvent } from "../notify/outbox.js";
import type { FleetContext } from "./context.js";
import { backoffDelayMs } from "./backoff.js";

/**
 * One worker run of one session attempt. Every write is fenced by `runId`: if another run has
 * taken the session over (a stalled job recovered twice) or it was cancelled, writes are refused
 * and the run stops. This is what makes BullMQ's at-least-once delivery safe.
 */
export interface Claim {
  session: QrSession;
  instance: Instance;
  runId: string;
  resumed: boolean;
}

type Tx = Prisma.TransactionClient;

/** Failures a later attempt may fix; the others need a human (a new token, a new instance). */
const RETRYABLE: ReadonlySet<FailureReason> = new Set([
  "provider_error", "protocol_error", "connection_lost", "silent", "too_long",
]);

export async function claimAttempt(
  ctx: FleetContext,
  job: { sessionId: string; attempt: number },
  runId: string,
  worker: string,
): Promise<Claim | null> {
  const claimed = await ctx.db.$executeRaw`
    UPDATE "QrSession" SET status = 'running', "runId" = ${runId}::uuid,
      "startedAt" = COALESCE("startedAt", now()), "updatedAt" = now()
    WHERE id = ${job.sessionId}::uuid AND attempt = ${job.attempt} AND status IN ('queued', 'running')`;
  if (claimed === 0) return null;
  const session = await ctx.db.qrSession.findUniqueOrThrow({ where: { id: job.sessionId }, include: { instance: true } });
  const existing = await ctx.db.qrAttempt.findUnique({
    where: { sessionId_number: { sessionId: job.sessionId, number: job.attempt } },
  });
  if (existing) {
    await ctx.db.qrAttempt.update({ where: { id: existing.id }, data: { resumes: { increment: 1 }, worker } });
  } else {
    await ctx.db.qrAttempt.create({ data: { sessionId: job.sessionId, number: job.attempt, worker } });
  }
  const { instance, ...rest } = session;
  return { session: rest, instance, runId, resumed: existing !== null };
}

async function lockIfOurs(tx: Tx, claim: Claim): Promise<{ qrCount: number } | null> {
  const rows = await tx.$queryRaw<Array<{ status: SessionStatus; runId: string | null; qrCount: number }>>`
    SELECT status, "runId", "qrCount" FROM "QrSession" WHERE id = ${claim.session.id}::uuid FOR UPDATE`;
  const row = rows[0];
  if (!row || row.status !== "running" || row.runId !== claim.runId) return null;
  return { qrCount: row.qrCount };
}

export type QrRecord = { stale: true } | { stale: false; duplicate: boolean; sequence: number; deliveryIds: string[] };

/**
 * Stores a QR image and announces it (event + deliveries) in one transaction. This is the per-QR
 * path (hundreds a second at fleet scale), so the fence, the insert and both counters are one
 * statement; a duplicate image inserts nothing and announces nothing.
 */
export async function recordQr(ctx: FleetContext, claim: Claim, qr: QrImage): Promise<QrRecord> {
  const { id: sessionId, attempt, instanceId } = claim.session;
  return ctx.db.$transaction(async (tx): Promise<QrRecord> => {
    const [row] = await tx.$queryRaw<Array<{ ours: number; sequence: number | null; attemptQrCount: number | null }>>`
      WITH s AS (
        SELECT id, "qrCount" FROM "QrSession"
        WHERE id = ${sessionId}::uuid AND status = 'running' AND "runId" = ${claim.runId}::uuid FOR UPDATE
      ), ins AS (
        INSERT INTO "QrCode" (id, "sessionId", attempt, sequence, png, sha256, "receivedAt")
        SELECT gen_random_uuid(), s.id, ${attempt}, s."qrCount" + 1, ${qr.png}, ${qr.sha256}, ${qr.receivedAt} FROM s
        ON CONFLICT ("sessionId", sha256) DO NOTHING
        RETURNING sequence
      ), counted AS (
        UPDATE "QrSession" q SET "qrCount" = ins.sequence, "updatedAt" = now() FROM ins WHERE q.id = ${sessionId}::uuid
        RETURNING q.id
      ), att AS (
        UPDATE "QrAttempt" a SET "qrCount" = a."qrCount" + 1 FROM ins
        WHERE a."sessionId" = ${sessionId}::uuid AND a.number = ${attempt}
        RETURNING a."qrCount"
      )
      SELECT (SELECT count(*) FROM s)::int AS ours, (SELECT sequence FROM ins) AS sequence,
             (SELECT "qrCount" FROM att) AS "attemptQrCount", (SELECT count(*) FROM counted)::int AS counted`;
    if (!row || row.ours === 0) return { stale: true };
    if (row.sequence === null) return { stale: false, duplicate: true, sequence: 0, deliveryIds: [] };
    const deliveryIds = await recordEvent(
      tx,
      {
        type: "qr.updated",
        instanceId,
        sessionId,
        attempt,
        qrSequence: row.sequence,
        firstOfAttempt: row.attemptQrCount === 1,
        data: { sequence: row.sequence, receivedAt: qr.receivedAt.toISOString() },
      },
      { escalateAfter: ctx.config.QRFLEET_ESCALATE_AFTER },
    );
    return { stale: false, duplicate: false, sequence: row.sequence, deliveryIds };
  });
}

export interface AttemptResult {
  stale: boolean;
  status: SessionStatus;
  next?: { attempt: number; delayMs: number };
  deliveryIds: string[];
}

function phoneMismatch(expected: string | null, actual: string | null): boolean {
  return expected !== null && actual !== null && expected !== actual;
}

/** What an attempt's outcome means for the session: its next status and, maybe, a next attempt. */
function decide(claim: Claim, outcome: SessionOutcome, now: Date) {
  const { session, instance } = claim;
  const retryable = outcome.kind === "timed_out" || (outcome.kind === "failed" && RETRYABLE.has(outcome.reason));
  if (retryable && session.attempt < session.maxAttempts) {
    const delayMs = backoffDelayMs(session.attempt + 1, session.backoffBaseMs, session.backoffMaxMs);
    return { status: "queued" as const, next: { attempt: session.attempt + 1, delayMs, dueAt: new Date(now.getTime() + delayMs) } };
  }
  switch (outcome.kind) {
    case "authorized":
      return { status: phoneMismatch(instance.expectedPhone, outcome.phone) ? ("wrong_number" as const) : ("authorized" as const) };
    case "already_logged":
      return { status: "already_logged" as const };
    case "timed_out":
      return { status: "timed_out" as const };
    case "cancelled":
      return { status: "cancelled" as const };
    case "failed":
      return { status: "failed" as const };
  }
}

function outcomeError(outcome: SessionOutcome): { errorCode: string | null; error: string | null } {
  if (outcome.kind === "failed") return { errorCode: outcome.reason, error: maskSecrets(outcome.message).slice(0, 2000) };
  if (outcome.kind === "cancelled") return { errorCode: "cancelled", error: maskSecrets(outcome.reason).slice(0, 2000) };
  if (outcome.kind === "timed_out") return { errorCode: "timed_out", error: "the scan window passed with no scan" };
  return { errorCode: null, error: null };
}

function instanceChange(status: SessionStatus, outcome: SessionOutcome, now: Date): Prisma.InstanceUpdateInput | null {
  if (status === "authorized" || status === "already_logged") {
    return { lastState: "authorized", lastStateAt: now, unlinkedSince: null, attention: null };
  }
  if (status === "wrong_number") return { attention: "wrong_number" };
  if (outcome.kind === "failed" && (outcome.reason === "invalid_token" || outcome.reason === "unknown_instance")) {
    return { attention: outcome.reason };
  }
  return null;
}

const EVENT_OF: Partial<Record<SessionStatus, string>> = {
  authorized: "session.authorized",
  already_logged: "session.already_logged",
  wrong_number: "session.wrong_number",
  timed_out: "session.timed_out",
  failed: "session.failed",
};

/** Records an attempt's outcome: the session either waits for its next attempt or ends. */
export async function finishAttempt(ctx: FleetContext, claim: Claim, outcome: SessionOutcome): Promise<AttemptResult> {
  const now = new Date();
  const { session } = claim;
  const d = decide(claim, outcome, now);
  const err = outcomeError(outcome);
  const accountData = outcome.kind === "authorized" ? (outcome.accountData as Prisma.InputJsonValue) : undefined;
  const phone = outcome.kind === "authorized" ? outcome.phone : null;
  return ctx.db.$transaction(async (tx): Promise<AttemptResult> => {
    if (!(await lockIfOurs(tx, claim))) return { stale: true, status: session.status, deliveryIds: [] };
    await tx.qrAttempt.update({
      where: { sessionId_number: { sessionId: session.id, number: session.attempt } },
      data: { endedAt: now, outcome: outcome.kind === "failed" ? `failed:${outcome.reason}` : outcome.kind, ...err },
    });
    const next = "next" in d ? d.next : undefined;
    await tx.qrSession.update({
      where: { id: session.id },
      data: next
        ? { status: "queued", attempt: next.attempt, dueAt: next.dueAt, runId: null, ...err }
        : { status: d.status, endedAt: now, runId: null, ...err, ...(accountData !== undefined && { accountData, phone }) },
    });
    const change = instanceChange(d.status, outcome, now);
    if (change) await tx.instance.update({ where: { id: claim.instance.id }, data: change });
    // An attempt that will be retried is announced too (webhooks only: final is false), so a
    // consumer knows why the QR updates stopped and when the next attempt is due.
    const type = next ? (outcome.kind === "timed_out" ? "session.timed_out" : "session.failed") : EVENT_OF[d.status];
    const deliveryIds = type
      ? await recordEvent(
          tx,
          {
            type: type as never,
            instanceId: claim.instance.id,
            sessionId: session.id,
            attempt: session.attempt,
            final: next === undefined,
            data: {
              status: d.status, attempts: session.attempt, ...err, phone, expectedPhone: claim.instance.expectedPhone,
              ...(next && { nextAttempt: next.attempt, nextAttemptAt: next.dueAt.toISOString() }),
              ...(d.status === "wrong_number" && { loggedOut: ctx.config.QRFLEET_LOGOUT_ON_WRONG_NUMBER }),
            },
          },
          { escalateAfter: ctx.config.QRFLEET_ESCALATE_AFTER },
        )
      : [];
    return { stale: false, status: d.status, ...(next && { next: { attempt: next.attempt, delayMs: next.delayMs } }), deliveryIds };
  });
}

/** Gives a running attempt back to the queue (shutdown, lost lock): the next run resumes it. */
export async function handBack(ctx: FleetContext, claim: Claim): Promise<boolean> {
  const { count } = await ctx.db.qrSession.updateMany({
    where: { id: claim.session.id, runId: claim.runId, status: "running" },
    data: { status: "queued", runId: null, dueAt: new Date() },
  });
  return count > 0;
}
