import { Batcher } from "../batcher.js";
import type { Sql } from "../db.js";
import type { QrImage } from "../greenapi/types.js";
import { SUPERSEDED } from "../notify/dispatcher.js";
import { recipientsSql } from "../notify/routing.js";

/**
 * The per-QR write: hundreds a second at fleet scale. Each batch is one statement that fences
 * every session by its run, stores the images, counts them, records a `qr.updated` event per
 * image and routes its deliveries; no transaction is held open across round trips. When a
 * session has several images in one batch (the database fell behind), all are stored but only
 * the newest is announced by webhook: the others' webhook deliveries are written `expired`.
 */

export interface QrToStore {
  sessionId: string;
  runId: string;
  attempt: number;
  image: QrImage;
}

export type StoredQr =
  /** The run no longer holds the session (it ended, or another run took it over). */
  | { kind: "stale" }
  /** The image was stored before (a resumed attempt's provider showed it again). */
  | { kind: "duplicate" }
  | {
      kind: "stored";
      sequence: number;
      firstOfAttempt: boolean;
      event: { id: string; createdAt: Date };
      deliveries: Array<{ id: string; channelId: string; status: "pending" | "expired" }>;
    };

export interface QrStoreOptions {
  escalateAfter: number;
  /** How long this process holds the deliveries it will send itself, in ms. */
  leaseMs: number;
  /** Images waiting for a statement above which intake should slow down. Default: 20000 */
  highWater?: number;
  maxBatch?: number;
  onError?(err: unknown, items: number, willRetry: boolean): void;
}

const STORE_SQL = `
  WITH input AS (
    SELECT t.*, substring($5::bytea FROM t.png_at FOR t.png_len) AS png
    FROM unnest($1::uuid[], $2::uuid[], $3::int[], $4::int[], $12::int[], $13::int[], $6::text[], $7::timestamptz[], $8::text[], $9::boolean[])
      AS t(session_id, run_id, attempt, k, png_at, png_len, sha256, received_at, received_iso, superseded)
  ), s AS (
    SELECT q.id, q."qrCount", q."instanceId" FROM "QrSession" q
    WHERE q.status = 'running' AND (q.id, q."runId") IN (SELECT DISTINCT session_id, run_id FROM input)
    ORDER BY q.id FOR UPDATE
  ), fresh AS (
    SELECT i.*, s."instanceId" AS instance_id, s."qrCount" AS base,
      row_number() OVER (PARTITION BY i.session_id ORDER BY i.k)::int AS n
    FROM input i JOIN s ON s.id = i.session_id
    WHERE NOT EXISTS (SELECT 1 FROM "QrCode" c WHERE c."sessionId" = i.session_id AND c.sha256 = i.sha256)
  ), ins AS (
    INSERT INTO "QrCode" (id, "sessionId", attempt, sequence, png, sha256, "receivedAt")
    SELECT gen_random_uuid(), session_id, attempt, base + n, png, sha256, received_at FROM fresh
    ON CONFLICT DO NOTHING
    RETURNING "sessionId" AS session_id, sequence
  ), kept AS (
    SELECT f.* FROM fresh f JOIN ins ON ins.session_id = f.session_id AND ins.sequence = f.base + f.n
  ), counted AS (
    UPDATE "QrSession" q SET "qrCount" = c.last, "updatedAt" = now()
    FROM (SELECT session_id, max(base + n) AS last FROM kept GROUP BY 1) c WHERE q.id = c.session_id
  ), att AS (
    UPDATE "QrAttempt" a SET "qrCount" = a."qrCount" + c.stored
    FROM (SELECT session_id, attempt, count(*)::int AS stored FROM kept GROUP BY 1, 2) c
    WHERE a."sessionId" = c.session_id AND a.number = c.attempt
    RETURNING a."sessionId" AS session_id, a."qrCount" - c.stored AS before
  ), ev AS (
    INSERT INTO "Event" (id, type, "instanceId", "sessionId", attempt, "qrSequence", payload, "createdAt")
    SELECT gen_random_uuid(), 'qr.updated', k.instance_id, k.session_id, k.attempt, k.base + k.n,
      jsonb_build_object('sequence', k.base + k.n, 'receivedAt', k.received_iso, 'firstOfAttempt', a.before + k.n = 1), now()
    FROM kept k JOIN att a ON a.session_id = k.session_id
    RETURNING id, "sessionId" AS session_id, "instanceId" AS instance_id, attempt, "qrSequence" AS sequence,
      (payload->>'firstOfAttempt')::boolean AS first, (extract(epoch FROM "createdAt") * 1000)::float8 AS created_ms
  ), del AS (
    INSERT INTO "Delivery" (id, "eventId", "channelId", status, "lastError", "nextAttemptAt", "createdAt", "updatedAt")
    SELECT gen_random_uuid(), e.id, r.id,
      CASE WHEN k.superseded AND r.kind = 'webhook' THEN 'expired' ELSE 'pending' END::"DeliveryStatus",
      CASE WHEN k.superseded AND r.kind = 'webhook' THEN '${SUPERSEDED}' END,
      now() + $11::int * interval '1 millisecond', now(), now()
    FROM ev e JOIN kept k ON k.session_id = e.session_id AND k.base + k.n = e.sequence
    CROSS JOIN LATERAL ${recipientsSql("e.instance_id", "e.attempt", "$10::int")} r
    WHERE r.kind = 'webhook' OR e.first
    RETURNING id, "eventId" AS event_id, "channelId" AS channel_id, status::text
  )
  SELECT i.session_id, i.k, s.id IS NOT NULL AS ours, e.sequence, e.id AS event_id, e.created_ms, e.first,
    d.id AS delivery_id, d.channel_id, d.status
  FROM input i
  LEFT JOIN s ON s.id = i.session_id
  LEFT JOIN kept k ON k.session_id = i.session_id AND k.k = i.k
  LEFT JOIN ev e ON e.session_id = k.session_id AND e.sequence = k.base + k.n
  LEFT JOIN del d ON d.event_id = e.id`;

interface Row {
  session_id: string;
  k: number;
  ours: boolean;
  sequence: number | null;
  event_id: string | null;
  created_ms: number | null;
  first: boolean | null;
  delivery_id: string | null;
  channel_id: string | null;
  status: "pending" | "expired" | null;
}

export class QrStore {
  private readonly batcher: Batcher<QrToStore, StoredQr>;

  constructor(sql: Sql, opts: QrStoreOptions) {
    const highWater = opts.highWater ?? 20_000;
    this.batcher = new Batcher({
      maxBatch: opts.maxBatch ?? 500,
      highWater,
      onError: opts.onError,
      run: (items) => storeBatch(sql, items, opts),
    });
  }

  /** Resolves once the image is committed, with what became of it. */
  store(qr: QrToStore): Promise<StoredQr> {
    return this.batcher.push(qr);
  }

  /** True while images wait for a statement faster than they are written: intake should pause. */
  get congested(): boolean {
    return this.batcher.congested;
  }

  room(): Promise<void> {
    return this.batcher.room();
  }

  drain(): Promise<void> {
    return this.batcher.drain();
  }
}

async function storeBatch(sql: Sql, items: QrToStore[], opts: QrStoreOptions): Promise<StoredQr[]> {
  const k = items.map((_, i) => i);
  // The images travel as one binary parameter with offsets: an array of bytea would be sent as
  // hex text, twice the bytes and a string per image to build and collect.
  const pngs = items.map((q) => q.image.png);
  const at: number[] = [];
  let offset = 1;
  for (const png of pngs) {
    at.push(offset);
    offset += png.length;
  }
  // Within a batch, the last image of a session is its newest; the others are superseded.
  const lastOf = new Map<string, number>();
  items.forEach((q, i) => lastOf.set(q.sessionId, i));
  const { rows } = await sql.query<Row>({
    name: "qrfleet-store-qr-v2",
    text: STORE_SQL,
    values: [
      items.map((q) => q.sessionId),
      items.map((q) => q.runId),
      items.map((q) => q.attempt),
      k,
      Buffer.concat(pngs),
      items.map((q) => q.image.sha256),
      items.map((q) => q.image.receivedAt),
      items.map((q) => q.image.receivedAt.toISOString()),
      items.map((q, i) => lastOf.get(q.sessionId) !== i),
      opts.escalateAfter,
      opts.leaseMs,
      at,
      pngs.map((png) => png.length),
    ],
  });
  const results: StoredQr[] = items.map(() => ({ kind: "stale" }));
  for (const row of rows) {
    const i = row.k;
    if (!row.ours) continue;
    if (row.sequence === null || row.event_id === null) {
      results[i] = { kind: "duplicate" };
      continue;
    }
    let r = results[i]!;
    if (r.kind !== "stored") {
      r = { kind: "stored", sequence: row.sequence, firstOfAttempt: row.first === true, event: { id: row.event_id, createdAt: new Date(row.created_ms!) }, deliveries: [] };
      results[i] = r;
    }
    if (row.delivery_id && row.channel_id && row.status) r.deliveries.push({ id: row.delivery_id, channelId: row.channel_id, status: row.status });
  }
  return results;
}
