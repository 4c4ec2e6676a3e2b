import type { FleetContext } from "../context.js";

/**
 * What is kept, and for how long: QR images for QRFLEET_QR_RETENTION_DAYS (they are only useful
 * while scannable, and they are most of the bytes); the audit trail — ended sessions with their
 * attempts, events and deliveries, events of no session, and ended provider-state episodes — for
 * QRFLEET_AUDIT_RETENTION_DAYS. Open sessions and open episodes are never touched. Deletes run in batches so no statement holds locks for long.
 */

const BATCH = 5000;

export interface RetentionResult {
  qrCodes: number;
  sessions: number;
  events: number;
  episodes: number;
}

export async function applyRetention(ctx: FleetContext): Promise<RetentionResult> {
  const qrCutoff = daysAgo(ctx.config.QRFLEET_QR_RETENTION_DAYS);
  const auditCutoff = daysAgo(ctx.config.QRFLEET_AUDIT_RETENTION_DAYS);
  return {
    qrCodes: await inBatches(ctx, `DELETE FROM "QrCode" WHERE id IN (SELECT id FROM "QrCode" WHERE "receivedAt" < $1 LIMIT ${BATCH})`, qrCutoff),
    // Attempts, QR codes, events and their deliveries go with their session (ON DELETE CASCADE).
    sessions: await inBatches(
      ctx,
      `DELETE FROM "QrSession" WHERE id IN (SELECT id FROM "QrSession"
         WHERE status NOT IN ('queued', 'running') AND "endedAt" < $1 LIMIT ${BATCH})`,
      auditCutoff,
    ),
    events: await inBatches(
      ctx,
      `DELETE FROM "Event" WHERE id IN (SELECT id FROM "Event" WHERE "sessionId" IS NULL AND "createdAt" < $1 LIMIT ${BATCH})`,
      auditCutoff,
    ),
    episodes: await inBatches(
      ctx,
      `DELETE FROM "StateEpisode" WHERE id IN (SELECT id FROM "StateEpisode" WHERE "endedAt" < $1 LIMIT ${BATCH})`,
      auditCutoff,
    ),
  };
}

async function inBatches(ctx: FleetContext, sql: string, cutoff: Date): Promise<number> {
  let deleted = 0;
  for (;;) {
    const { rowCount } = await ctx.sql.query(sql, [cutoff]);
    deleted += rowCount ?? 0;
    if ((rowCount ?? 0) < BATCH) return deleted;
  }
}

const daysAgo = (days: number) => new Date(Date.now() - days * 86_400_000);
