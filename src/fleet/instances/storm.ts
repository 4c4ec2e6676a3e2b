import { isUniqueViolation } from "../../db.js";
import { KINDS_DIGESTED_FLEET_WIDE } from "../../notify/kinds/index.js";
import { recordFleetEvent } from "../../notify/outbox.js";
import { addNotifyJobs } from "../../queues.js";
import { startTicker, type Ticker } from "../../lib/ticker.js";
import type { FleetContext } from "../context.js";

/**
 * Storm control. When more of the fleet logs out within QRFLEET_STORM_WINDOW_MS than the larger of
 * QRFLEET_STORM_MIN_LOGOUTS and QRFLEET_STORM_SHARE_PERCENT of the enabled instances, the fleet
 * raises one `fleet.incident` to its fleet-wide operators; when the count falls back under that
 * threshold, one `fleet.recovered`. While it lasts, a channel a person reads that would get more
 * than QRFLEET_STORM_CHANNEL_PER_MINUTE instances' messages a minute gets digests instead, and its
 * digests say why. Sessions still start at their usual pace: a storm changes who is told and how.
 *
 * A logout is a session the sweep or the provider's webhook started; an admin's or the live page's
 * are asked for, not suffered. The incident row (at most one open) makes the raise and the end
 * happen once, whichever daemon sees them first.
 */

export type StormState = "calm" | "raised" | "ongoing" | "ended";

export interface StormCheck {
  state: StormState;
  /** Instances logged out within the window. */
  count: number;
  threshold: number;
}

const MEASURE_SQL = `
  SELECT (SELECT count(*)::int FROM "Instance" WHERE enabled) AS enabled,
    count(DISTINCT s."instanceId")::int AS n,
    (extract(epoch FROM min(s."createdAt")) * 1000)::float8 AS first_ms, (extract(epoch FROM max(s."createdAt")) * 1000)::float8 AS latest_ms
  FROM "QrSession" s JOIN "Instance" i ON i.id = s."instanceId"
  WHERE s."createdAt" >= now() - $1::int * interval '1 millisecond' AND s.trigger IN ('sweep', 'provider') AND i.enabled`;

/**
 * The channels an incident turns to digests: enabled, of a kind a person reads, not in digest mode
 * already, and told of more instances' new sessions in the last minute than allowed (an assigned
 * operator of their instances, a fleet-wide one of the unassigned). Only while an incident is open:
 * a daemon that saw it going on may write after another has ended it.
 */
const HOLD_SQL = `
  WITH recent AS (
    SELECT DISTINCT s."instanceId" AS id FROM "QrSession" s WHERE s."createdAt" >= now() - interval '1 minute'
  ), assigned AS (
    SELECT a."operatorId", count(*)::int AS n FROM recent r JOIN "Assignment" a ON a."instanceId" = r.id GROUP BY 1
  ), unassigned AS (
    SELECT count(*)::int AS n FROM recent r WHERE NOT EXISTS (SELECT 1 FROM "Assignment" a WHERE a."instanceId" = r.id)
  )
  UPDATE "Channel" c SET "stormHeldSince" = now()
  WHERE EXISTS (SELECT 1 FROM "FleetIncident" f WHERE f.open)
    AND c.enabled AND c."stormHeldSince" IS NULL AND c.kind::text = ANY($2::text[])
    -- In digest mode already: set so, or by default as a fleet-wide operator's.
    AND NOT (c.mode IS NOT DISTINCT FROM 'digest' OR (c.mode IS NULL AND NOT EXISTS (SELECT 1 FROM "Assignment" o WHERE o."operatorId" = c."operatorId")))
    AND COALESCE(
      (SELECT n FROM assigned WHERE assigned."operatorId" = c."operatorId"),
      CASE WHEN EXISTS (SELECT 1 FROM "Assignment" o WHERE o."operatorId" = c."operatorId") THEN 0 ELSE (SELECT n FROM unassigned) END
    ) > $1::int
  RETURNING c.id`;

interface Measure {
  enabled: number;
  n: number;
  first_ms: number | null;
  latest_ms: number | null;
}

export function stormThreshold(enabledInstances: number, minLogouts: number, sharePercent: number): number {
  return Math.max(minLogouts, Math.ceil((enabledInstances * sharePercent) / 100));
}

/** One look at the fleet: raises, follows or ends the incident. Safe to run on every daemon at once. */
export async function checkStorm(ctx: FleetContext): Promise<StormCheck> {
  const c = ctx.config;
  const { rows } = await ctx.sql.query<Measure>({ name: "qrfleet-storm-measure-v1", text: MEASURE_SQL, values: [c.QRFLEET_STORM_WINDOW_MS] });
  const m = rows[0]!;
  const threshold = stormThreshold(m.enabled, c.QRFLEET_STORM_MIN_LOGOUTS, c.QRFLEET_STORM_SHARE_PERCENT);
  const open = await ctx.db.fleetIncident.findFirst({ where: { open: true } });
  const check = (state: StormState): StormCheck => ({ state, count: m.n, threshold });
  // A raise that loses to another daemon's finds the incident it raised.
  if (!open) return m.n > threshold ? check((await raise(ctx, m, threshold)) ? "raised" : "ongoing") : check("calm");
  if (m.n < threshold) return (await end(ctx, open.id, m)) ? check("ended") : check("calm");
  await ctx.db.fleetIncident.updateMany({
    where: { id: open.id, open: true },
    data: { ...(m.latest_ms !== null && { latestAt: new Date(m.latest_ms) }), ...(m.n > open.peak && { peak: m.n }) },
  });
  await holdBusyChannels(ctx);
  return check("ongoing");
}

async function raise(ctx: FleetContext, m: Measure, threshold: number): Promise<boolean> {
  const firstAt = m.first_ms === null ? new Date() : new Date(m.first_ms);
  const latestAt = m.latest_ms === null ? firstAt : new Date(m.latest_ms);
  let deliveries: string[];
  try {
    deliveries = await ctx.db.$transaction(async (tx) => {
      const incident = await tx.fleetIncident.create({ data: { firstAt, latestAt, peak: m.n, threshold } });
      return recordFleetEvent(tx, "fleet.incident", {
        incidentId: incident.id, count: m.n, threshold, enabledInstances: m.enabled, windowMs: ctx.config.QRFLEET_STORM_WINDOW_MS,
        firstAt, latestAt, dashboardUrl: dashboardLink(ctx, firstAt),
      });
    });
  } catch (err) {
    // Another daemon raised it first.
    if (isUniqueViolation(err)) return false;
    throw err;
  }
  await holdBusyChannels(ctx);
  await addNotifyJobs(ctx.queues, deliveries);
  return true;
}

async function end(ctx: FleetContext, id: string, m: Measure): Promise<boolean> {
  const deliveries = await ctx.db.$transaction(async (tx) => {
    const ended = await tx.fleetIncident.updateMany({ where: { id, open: true }, data: { open: false, endedAt: new Date() } });
    if (ended.count === 0) return null;
    const incident = await tx.fleetIncident.findUniqueOrThrow({ where: { id } });
    // What they held still goes out in their next digest; what comes now is sent as their mode says.
    await tx.channel.updateMany({ where: { stormHeldSince: { not: null } }, data: { stormHeldSince: null } });
    return recordFleetEvent(tx, "fleet.recovered", {
      incidentId: id, count: m.n, threshold: incident.threshold, windowMs: ctx.config.QRFLEET_STORM_WINDOW_MS,
      startedAt: incident.startedAt, peak: incident.peak,
    });
  });
  if (deliveries === null) return false;
  await addNotifyJobs(ctx.queues, deliveries);
  return true;
}

/** Turns the channels an incident floods to digests; none while no incident is open. */
export async function holdBusyChannels(ctx: FleetContext): Promise<void> {
  await ctx.sql.query({ name: "qrfleet-storm-hold-v3", text: HOLD_SQL, values: [ctx.config.QRFLEET_STORM_CHANNEL_PER_MINUTE, KINDS_DIGESTED_FLEET_WIDE] });
}

/** The dashboard, filtered to the instances unlinked since the incident's first logout (a minute of slack for clocks). */
function dashboardLink(ctx: FleetContext, firstAt: Date): string {
  const since = new Date(firstAt.getTime() - 60_000).toISOString();
  return `${ctx.config.QRFLEET_PUBLIC_URL.replace(/\/+$/, "")}/admin?unlinked_since=${encodeURIComponent(since)}`;
}

/** How often to look: a tenth of the window, within 100 ms to 5 s. */
export const stormCheckMs = (windowMs: number) => Math.min(5000, Math.max(100, Math.floor(windowMs / 10)));

/** Looks for a storm on a timer; a failed look is logged and the next one tries again. */
export function startStormWatch(ctx: FleetContext): Ticker {
  return startTicker(stormCheckMs(ctx.config.QRFLEET_STORM_WINDOW_MS), () => checkStorm(ctx), (err) =>
    ctx.log.warn({ err }, "could not check for a logout storm; the next check will"),
  );
}
