import type { Sql } from "../db.js";
import { notifyJobId, type Queues } from "../queues.js";

/**
 * Deliveries replayed by hand: back to `pending` with their tries reset, and queued. The delivery
 * keeps its id, so a webhook goes out with the same `webhook-id` and a receiver that already has
 * it can tell. Only a delivery that nobody is sending moves: the statement matches no `pending`
 * row (due, leased to a sender, or waiting for its next try), so two replays at once, or a replay
 * during a try, send it once; the lease in deliver.ts does the rest.
 */

/** The most deliveries one `--failed` replay moves; run it again for more. */
export const REPLAY_MAX = 10_000;

export interface ReplayFilter {
  /** Only this channel's. */
  channelId?: string;
  /** Only deliveries created at or after this. */
  since?: Date;
}

const RESET = `status = 'pending', tries = 0, "lastError" = NULL, "responseStatus" = NULL, "responseBody" = NULL,
  "handedOffAt" = NULL, "sentAt" = NULL, "nextTryAt" = now(), "updatedAt" = now()`;

const REPLAY_ONE_SQL = `
  UPDATE "Delivery" d SET ${RESET}
  FROM "Channel" c
  WHERE d.id = $1::uuid AND c.id = d."channelId" AND c.enabled AND d.status <> 'pending'
  RETURNING d.id`;

const REPLAY_FAILED_SQL = `
  UPDATE "Delivery" d SET ${RESET}
  WHERE d.id IN (
    SELECT f.id FROM "Delivery" f JOIN "Channel" c ON c.id = f."channelId"
    WHERE f.status = 'failed' AND c.enabled
      AND ($1::uuid IS NULL OR f."channelId" = $1::uuid)
      AND ($2::timestamptz IS NULL OR f."createdAt" >= $2::timestamptz)
    ORDER BY f."createdAt" LIMIT ${REPLAY_MAX}
    FOR UPDATE OF f SKIP LOCKED
  ) AND d.status = 'failed'
  RETURNING d.id`;

/** Why one delivery was not replayed, or null when it was. */
export type ReplayRefusal = "not_found" | "pending" | "channel_disabled";

export async function replayDelivery(sql: Sql, queues: Queues, id: string): Promise<ReplayRefusal | null> {
  const { rows } = await sql.query<{ id: string }>(REPLAY_ONE_SQL, [id]);
  if (rows.length === 1) {
    await addReplayJobs(queues, [id]);
    return null;
  }
  const { rows: found } = await sql.query<{ status: string; enabled: boolean }>(
    `SELECT d.status::text AS status, c.enabled FROM "Delivery" d JOIN "Channel" c ON c.id = d."channelId" WHERE d.id = $1::uuid`,
    [id],
  );
  const row = found[0];
  if (!row) return "not_found";
  return row.status === "pending" ? "pending" : "channel_disabled";
}

/** Replays failed deliveries of enabled channels; returns their ids. */
export async function replayFailed(sql: Sql, queues: Queues, filter: ReplayFilter): Promise<string[]> {
  const { rows } = await sql.query<{ id: string }>(REPLAY_FAILED_SQL, [filter.channelId ?? null, filter.since ?? null]);
  const ids = rows.map((r) => r.id);
  await addReplayJobs(queues, ids);
  return ids;
}

/**
 * A replay's job needs an id of its own: the delivery's first job (`notifyJobId`) is kept for a
 * day after it ended, and BullMQ ignores an add under an id it still holds.
 */
async function addReplayJobs(queues: Queues, ids: readonly string[]): Promise<void> {
  const at = Date.now();
  for (let i = 0; i < ids.length; i += 1000) {
    const chunk = ids.slice(i, i + 1000);
    await queues.notify.addBulk(chunk.map((deliveryId) => ({ name: "deliver", data: { deliveryId }, opts: { jobId: `${notifyJobId(deliveryId)}-replay-${at}` } })));
  }
}
