import { KINDS_DIGESTED_FLEET_WIDE } from "./kinds/index.js";

/** Kind names are the registry's own words, never input: safe to write into the statement. */
const fleetWideDigest =
  KINDS_DIGESTED_FLEET_WIDE.length === 0 ? "false" : `c.kind::text IN (${KINDS_DIGESTED_FLEET_WIDE.map((k) => `'${k}'`).join(", ")})`;

/**
 * Who hears about an instance's events: the channels of its operators whose escalation tier is
 * due, or, when nobody is assigned to it, the fleet-wide defaults (operators with no instance of
 * their own). Written once as SQL so every statement that records an event routes its deliveries
 * in the same round trip. Tier N (N ≥ 2) hears about an instance once attempt > (N − 1) × escalateAfter.
 *
 * A disabled channel (by an admin, a 410 Gone, or failing too long: channel-health.ts) gets nothing
 * new: `enabled` is read here, inside that statement, so the per-QR path makes no extra lookup.
 *
 * `held` says the delivery waits for the channel's next digest (notify/digests.ts): its mode is
 * digest, or it has none set and it is a fleet-wide operator's channel of a kind that reaches a
 * person (a fleet-wide operator hears of every instance, so one message each would be a flood), or
 * a fleet incident holds it in digest mode for now (`stormHeldSince`, fleet/instances/storm.ts).
 *
 * The arguments are SQL expressions (column references or placeholders), never input text.
 * The result has the columns `id` (channel id), `kind` and `held`.
 */
export function recipientsSql(instance: string, attempt: string, escalateAfter: string): string {
  return `(
    SELECT c.id, c.kind, COALESCE(c.mode = 'digest', false) OR c."stormHeldSince" IS NOT NULL AS held
    FROM "Assignment" a JOIN "Channel" c ON c."operatorId" = a."operatorId"
    WHERE a."instanceId" = ${instance} AND c.enabled
      AND (a.tier <= 1 OR ${attempt} > (a.tier - 1) * ${escalateAfter})
    UNION ALL
    SELECT c.id, c.kind, COALESCE(c.mode = 'digest', ${fleetWideDigest}) OR c."stormHeldSince" IS NOT NULL AS held FROM "Channel" c
    WHERE c.enabled
      AND NOT EXISTS (SELECT 1 FROM "Assignment" i WHERE i."instanceId" = ${instance})
      AND NOT EXISTS (SELECT 1 FROM "Assignment" o WHERE o."operatorId" = c."operatorId")
  )`;
}

/** The enabled channels of the fleet-wide operators (those with no instance of their own): who hears of the fleet as a whole. */
export const FLEET_WIDE_CHANNELS_SQL = `
  SELECT c.id FROM "Channel" c
  WHERE c.enabled AND NOT EXISTS (SELECT 1 FROM "Assignment" o WHERE o."operatorId" = c."operatorId")`;
