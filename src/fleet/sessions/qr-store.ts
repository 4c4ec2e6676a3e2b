import { Batcher } from "../../lib/batcher.js";
import type { Sql } from "../../db.js";
import type { QrImage } from "../../greenapi/types.js";
import { SUPERSEDED } from "../../notify/dispatcher.js";
import { recipientsSql } from "../../notify/routing.js";
import { KINDS_ENDED_BY_A_NEWER_QR, kindsWanting } from "../../notify/kinds/index.js";

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
  /** The attempt's first QR code (only it is emailed); the run knows, so no counter is read or written per image. */
  first: boolean;
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
      deliveries: Array<{ id: string; channelId: string; status: "pending" | "expired" | "held" }>;
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

/** Which kinds of channel hear of an attempt's first QR, and of the ones after it, immediate or held for a digest (notify/kinds). */
const FIRST_QR_KINDS = kindsWanting({ type: "qr.updated", firstOfAttempt: true });
const LATER_QR_KINDS = kindsWanting({ type: "qr.updated", firstOfAttempt: false });
const FIRST_QR_KINDS_HELD = kindsWanting({ type: "qr.updated", firstOfAttempt: true, digest: true });
const LATER_QR_KINDS_HELD = kindsWanting({ type: "qr.updated", firstOfAttempt: false, digest: true });

/**
 * Written so that no step joins two CTEs: their row counts are unknown to the planner, which then
 * picks nested loops, and at 500 images a batch those made the statement ten times slower. Ids are
 * drawn in `fresh`, so the event and its deliveries are inserted from the same rows; the answer is
 * three plain lists (sessions held, images stored, deliveries made) that the caller puts together.
 */
const STORE_SQL = `
  WITH input AS (
    SELECT t.*, substring($5::bytea FROM t.png_at FOR t.png_len) AS png
    FROM unnest($1::uuid[], $2::uuid[], $3::int[], $4::int[], $12::int[], $13::int[], $6::text[], $7::timestamptz[], $8::text[], $9::boolean[], $14::boolean[])
      AS t(session_id, run_id, attempt, k, png_at, png_len, sha256, received_at, received_iso, superseded, first)
  ), s AS (
    SELECT q.id, q."qrCount", q."instanceId" FROM "QrSession" q
    WHERE q.status = 'running' AND (q.id, q."runId") IN (SELECT DISTINCT session_id, run_id FROM input)
    ORDER BY q.id FOR UPDATE
  ), numbered AS (
    SELECT i.*, s."instanceId" AS instance_id, s."qrCount" AS base,
      row_number() OVER (PARTITION BY i.session_id ORDER BY i.k)::int AS n
    FROM input i JOIN s ON s.id = i.session_id
    WHERE NOT EXISTS (SELECT 1 FROM "QrCode" c WHERE c."sessionId" = i.session_id AND c.sha256 = i.sha256)
  ), fresh AS (
    SELECT numbered.*, base + n AS sequence, gen_random_uuid() AS event_id FROM numbered
  ), ins AS (
    INSERT INTO "QrCode" (id, "sessionId", attempt, sequence, png, sha256, "receivedAt")
    SELECT gen_random_uuid(), session_id, attempt, sequence, png, sha256, received_at FROM fresh
  ), counted AS (
    -- The session's count is what the live page follows; an attempt's is written when it ends.
    UPDATE "QrSession" q SET "qrCount" = c.last, "updatedAt" = now()
    FROM (SELECT session_id, max(sequence) AS last FROM fresh GROUP BY 1) c WHERE q.id = c.session_id
  ), ev AS (
    INSERT INTO "Event" (id, type, "instanceId", "sessionId", attempt, "qrSequence", payload, "createdAt")
    SELECT event_id, 'qr.updated', instance_id, session_id, attempt, sequence,
      jsonb_build_object('sequence', sequence, 'receivedAt', received_iso, 'firstOfAttempt', first), now()
    FROM fresh
  ), del AS (
    INSERT INTO "Delivery" (id, "eventId", "channelId", status, "lastError", "nextTryAt", "createdAt", "updatedAt")
    SELECT gen_random_uuid(), f.event_id, r.id,
      CASE WHEN f.superseded AND r.kind::text = ANY($17::text[]) THEN 'expired' WHEN r.held THEN 'held' ELSE 'pending' END::"DeliveryStatus",
      CASE WHEN f.superseded AND r.kind::text = ANY($17::text[]) THEN '${SUPERSEDED}' END,
      now() + $11::int * interval '1 millisecond', now(), now()
    FROM fresh f CROSS JOIN LATERAL ${recipientsSql("f.instance_id", "f.attempt", "$10::int")} r
    WHERE r.kind::text = ANY(CASE WHEN f.first THEN (CASE WHEN r.held THEN $18::text[] ELSE $15::text[] END)
      ELSE (CASE WHEN r.held THEN $19::text[] ELSE $16::text[] END) END)
    RETURNING id, "eventId" AS event_id, "channelId" AS channel_id, status::text
  )
  SELECT 's' AS row, id AS session_id, NULL::int AS k, NULL::int AS sequence, NULL::uuid AS event_id, NULL::boolean AS first,
    NULL::uuid AS channel_id, NULL::text AS status, NULL::float8 AS created_ms FROM s
  UNION ALL
  SELECT 'q', session_id, k, sequence, event_id, first, NULL, NULL, (extract(epoch FROM now()::timestamp(3)) * 1000)::float8 FROM fresh
  UNION ALL
  SELECT 'd', id, NULL, NULL, event_id, NULL, channel_id, status, NULL FROM del`;

/** `s`: a session this batch's run holds; `q`: an image stored (session_id, k, …); `d`: a delivery (session_id is its id). */
interface Row {
  row: "s" | "q" | "d";
  session_id: string;
  k: number | null;
  sequence: number | null;
  event_id: string | null;
  first: boolean | null;
  channel_id: string | null;
  status: "pending" | "expired" | "held" | null;
  created_ms: number | null;
}

export class QrStore {
  private readonly batcher: Batcher<QrToStore, StoredQr>;

  constructor(sql: Sql, opts: QrStoreOptions) {
    const highWater = opts.highWater ?? 20_000;
    this.batcher = new Batcher({
      maxBatch: opts.maxBatch ?? 2000,
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
    name: "qrfleet-store-qr-v6",
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
      items.map((q) => q.first),
      FIRST_QR_KINDS,
      LATER_QR_KINDS,
      KINDS_ENDED_BY_A_NEWER_QR,
      FIRST_QR_KINDS_HELD,
      LATER_QR_KINDS_HELD,
    ],
  });
  const held = new Set<string>();
  const byEvent = new Map<string, Extract<StoredQr, { kind: "stored" }>>();
  const results: StoredQr[] = items.map(() => ({ kind: "stale" }));
  for (const row of rows) {
    if (row.row === "s") held.add(row.session_id);
    else if (row.row === "q") {
      const stored = { kind: "stored" as const, sequence: row.sequence!, firstOfAttempt: row.first === true, event: { id: row.event_id!, createdAt: new Date(row.created_ms!) }, deliveries: [] };
      results[row.k!] = stored;
      byEvent.set(row.event_id!, stored);
    } else byEvent.get(row.event_id!)?.deliveries.push({ id: row.session_id, channelId: row.channel_id!, status: row.status! });
  }
  // Held but not stored: the image was there already.
  items.forEach((q, i) => {
    if (results[i]!.kind === "stale" && held.has(q.sessionId)) results[i] = { kind: "duplicate" };
  });
  return results;
}
