import type { Db, Sql } from "../db.js";

/**
 * Digests: a channel in digest mode gets its deliveries written `held` (notify/routing.ts), and
 * here they are cut into one digest per channel: a `digest` event with one delivery, sent like any
 * other (delivery-try.ts), while the held rows become `digested` and name it. Cutting is one
 * statement, so a digest and the rows it took commit together: a crash leaves either both or
 * neither, and a row can go into one digest only.
 *
 * A channel's digest is cut once its oldest held row has waited the group window, and no sooner
 * than the group interval after its last digest (Alertmanager's group_wait and group_interval).
 */

export interface DigestTiming {
  /** How long the first event held waits for others, in ms. */
  windowMs: number;
  /** The least time between two digests of one channel, in ms. */
  intervalMs: number;
}

/** Held at once by one daemon's cut: two cuts at once would split a channel's rows between two digests. */
const CUT_LOCK = 7_236_451;

/** `storm`: a fleet incident made the channel one that gets digests (fleet/instances/storm.ts); the digest says so. */
const CUT_SQL = `
  WITH lock AS MATERIALIZED (
    SELECT pg_try_advisory_xact_lock(${CUT_LOCK}) AS ours
  ), held AS (
    SELECT d."channelId" AS channel_id, min(d."createdAt") AS first_at
    FROM "Delivery" d WHERE d.status = 'held' AND (SELECT ours FROM lock)
    GROUP BY 1
  ), ready AS (
    SELECT h.channel_id, COALESCE(c."lastDigestAt", h.first_at) AS since, c."stormHeldSince" IS NOT NULL AS storm,
      gen_random_uuid() AS event_id, gen_random_uuid() AS delivery_id
    FROM held h JOIN "Channel" c ON c.id = h.channel_id
    WHERE h.first_at <= now() - $1::int * interval '1 millisecond'
      AND (c."lastDigestAt" IS NULL OR c."lastDigestAt" <= now() - $2::int * interval '1 millisecond')
  ), moved AS (
    UPDATE "Delivery" d SET status = 'digested', "digestId" = r.delivery_id, "updatedAt" = now()
    FROM ready r WHERE d."channelId" = r.channel_id AND d.status = 'held'
    RETURNING d."channelId" AS channel_id
  ), cut AS (
    SELECT r.*, m.n FROM ready r JOIN (SELECT channel_id, count(*)::int AS n FROM moved GROUP BY 1) m USING (channel_id)
  ), ev AS (
    INSERT INTO "Event" (id, type, payload, "createdAt")
    SELECT event_id, 'digest', jsonb_build_object('since', to_char(since, 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'), 'storm', storm), now() FROM cut
  ), stamped AS (
    UPDATE "Channel" c SET "lastDigestAt" = now() FROM cut WHERE c.id = cut.channel_id
  )
  INSERT INTO "Delivery" (id, "eventId", "channelId", status, "nextTryAt", "createdAt", "updatedAt")
  SELECT delivery_id, event_id, channel_id, 'pending', now(), now(), now() FROM cut
  RETURNING id, "channelId" AS "channelId"`;

export interface CutDigest {
  /** The digest's delivery, pending: the notify queue sends it. */
  id: string;
  channelId: string;
}

/** Cuts every digest that is due now; returns their deliveries (none while another daemon cuts). */
export async function cutDigests(sql: Sql, timing: DigestTiming): Promise<CutDigest[]> {
  const { rows } = await sql.query<CutDigest>({ name: "qrfleet-cut-digests-v2", text: CUT_SQL, values: [timing.windowMs, timing.intervalMs] });
  return rows;
}

/**
 * A digest email interrupted between SMTP and its answer may or may not have arrived, and is not
 * sent again (email is at most once). What it carried goes back to its channel's held rows, so
 * the next digest names it again rather than leave it unsaid; returns how many went back.
 */
export async function holdAgain(db: Db, digestDeliveryId: string): Promise<number> {
  const { count } = await db.delivery.updateMany({ where: { digestId: digestDeliveryId, status: "digested" }, data: { status: "held", digestId: null } });
  return count;
}
