import { Batcher } from "../lib/batcher.js";
import type { Sql } from "../db.js";

/**
 * Writes what became of the deliveries this process sent itself, many per statement. A result
 * that is lost (the process died before the batch was written) leaves its delivery `pending`
 * under this process's lease; after the lease the reconciler hands it to the notify queue, which
 * finds the QR superseded (expired) or sends the same webhook-id again: receivers deduplicate.
 * While the process lives, a result is retried for two leases (PostgreSQL restarting), as long as
 * no other run takes an email handed to SMTP for interrupted: given up sooner, a webhook already
 * received would be sent again and an email already handed to SMTP would be recorded failed.
 */

export interface TryRecord {
  id: string;
  /** `pending` with `nextAt`: tried and to be retried by the notify queue then. */
  status: "sent" | "failed" | "expired" | "pending";
  /** 1 for a try that reached the channel, 0 for one decided without sending (expired unsent). */
  tried: 0 | 1;
  lastError: string | null;
  responseStatus: number | null;
  responseBody: string | null;
  nextAt: Date | null;
}

const RECORD_SQL = `
  UPDATE "Delivery" d SET status = v.status::"DeliveryStatus", tries = d.tries + v.tried,
    "lastError" = v.last_error, "responseStatus" = v.response_status, "responseBody" = v.response_body,
    "sentAt" = CASE WHEN v.status = 'sent' THEN now() ELSE d."sentAt" END,
    "nextTryAt" = COALESCE(v.next_at, d."nextTryAt"), "handedOffAt" = NULL, "updatedAt" = now()
  FROM unnest($1::uuid[], $2::text[], $3::int[], $4::text[], $5::int[], $6::text[], $7::timestamptz[])
    AS v(id, status, tried, last_error, response_status, response_body, next_at)
  WHERE d.id = v.id AND d.status = 'pending'
  RETURNING d.id`;

/** At most once for email: only a delivery whose hand-off this statement recorded goes to SMTP. */
const HAND_OFF_SQL = `
  UPDATE "Delivery" SET "handedOffAt" = now(), "updatedAt" = now()
  WHERE id = ANY($1::uuid[]) AND status = 'pending' AND "handedOffAt" IS NULL
  RETURNING id`;

/** Gives deliveries this process will not send back to whoever runs the notify queue, now. */
const RELEASE_SQL = `
  UPDATE "Delivery" SET "nextTryAt" = now(), "updatedAt" = now()
  WHERE id = ANY($1::uuid[]) AND status = 'pending' AND "handedOffAt" IS NULL
  RETURNING id`;

export class DeliveryRecorder {
  private readonly results: Batcher<TryRecord, boolean>;
  private readonly handOffs: Batcher<string, boolean>;

  /** `retryForMs`: how long a result is tried again while PostgreSQL is away (deliver.ts handOffResultMs). */
  constructor(
    private readonly sql: Sql,
    onError?: (err: unknown, items: number, willRetry: boolean) => void,
    retryForMs = 0,
  ) {
    this.results = new Batcher({ onError, retryForMs, run: (items) => this.writeResults(items) });
    this.handOffs = new Batcher({ onError, run: (ids) => this.updateIds("qrfleet-hand-off-v1", HAND_OFF_SQL, ids) });
  }

  /** Resolves true when the delivery was still pending and now records this result. */
  record(r: TryRecord): Promise<boolean> {
    return this.results.push(r);
  }

  /** Resolves true when this process may hand the email to SMTP now. */
  handOff(id: string): Promise<boolean> {
    return this.handOffs.push(id);
  }

  /** Resolves with the deliveries that were still pending, now due for the notify queue. */
  async release(ids: readonly string[]): Promise<string[]> {
    if (ids.length === 0) return [];
    const { rows } = await this.sql.query<{ id: string }>(RELEASE_SQL, [ids]);
    return rows.map((r) => r.id);
  }

  async drain(): Promise<void> {
    await Promise.all([this.results.drain(), this.handOffs.drain()]);
  }

  private async writeResults(items: TryRecord[]): Promise<boolean[]> {
    const { rows } = await this.sql.query<{ id: string }>({
      name: "qrfleet-record-tries-v1",
      text: RECORD_SQL,
      values: [
        items.map((r) => r.id),
        items.map((r) => r.status),
        items.map((r) => r.tried),
        items.map((r) => r.lastError),
        items.map((r) => r.responseStatus),
        items.map((r) => r.responseBody),
        items.map((r) => r.nextAt),
      ],
    });
    const updated = new Set(rows.map((r) => r.id));
    return items.map((r) => updated.has(r.id));
  }

  private async updateIds(name: string, text: string, ids: string[]): Promise<boolean[]> {
    const { rows } = await this.sql.query<{ id: string }>({ name, text, values: [ids] });
    const updated = new Set(rows.map((r) => r.id));
    return ids.map((id) => updated.has(id));
  }
}
