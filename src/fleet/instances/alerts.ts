import { addNotifyJobs } from "../../queues.js";
import { recordEvent, type Tx } from "../../notify/outbox.js";
import type { StatePolicies, StatePolicy } from "../../state-policies.js";
import type { FleetContext } from "../context.js";
import type { StateReport } from "./state-report.js";
import { providerFor } from "../provider/provider.js";

/**
 * The provider states a human must hear about, followed as episodes (one stretch of one state,
 * a StateEpisode row): `alert` tells the operators at once, `reboot` reboots once and tells them
 * if the state outlives the reboot, `warn_unlink` warns of WhatsApp's unlink deadline after days.
 * Every step is a conditional write on the episode (one open per instance, a partial unique
 * index; `rebootedAt`/`alertedAt` set only while null), so concurrent sweeps, a second daemon, the
 * provider's webhook and a restart all agree: one reboot, one alert, one "recovered" per episode.
 */

/** The policies that open an episode; the others only record the state (or start/end a session). */
const WATCHING: ReadonlySet<StatePolicy> = new Set(["alert", "reboot", "warn_unlink"]);

/** Whether a stretch of this state is followed as an episode under these policies (any word not known: no). */
export function watchesEpisodes(state: string, policies: StatePolicies): boolean {
  return WATCHING.has(policies[state as keyof StatePolicies]);
}

interface Episode {
  id: string;
  instanceId: string;
  state: string;
  since: Date;
  rebootedAt: Date | null;
  alertedAt: Date | null;
}

/** Columns hold UTC without a zone (Prisma's mapping): read as timestamptz so no driver guesses a zone. */
const utc = (column: string) => `(e."${column}" AT TIME ZONE 'UTC') AS "${column}"`;
const EPISODE_COLUMNS = `e.id::text AS id, e."instanceId"::text AS "instanceId", e.state, ${["since", "rebootedAt", "alertedAt"].map(utc).join(", ")}`;

/**
 * Ends the open episode of every instance now in another state. The stretch must have begun by
 * the report's time, so a report that raced a newer one cannot end the episode the newer one opened.
 */
const END_SQL = `
  WITH v AS (SELECT * FROM unnest($1::uuid[], $2::text[], $3::timestamptz[], $4::int[]) AS v(id, state, at, precision_ms)),
  -- Locked in instance order first, as instance-state.ts locks instances: concurrent sweeps wait, never deadlock.
  locked AS MATERIALIZED (
    SELECT e.id FROM "StateEpisode" e WHERE e."instanceId" IN (SELECT id FROM v) AND e."endedAt" IS NULL ORDER BY e."instanceId" FOR UPDATE)
  UPDATE "StateEpisode" e SET "endedAt" = v.at, "endState" = v.state
  FROM v
  WHERE e.id IN (SELECT id FROM locked) AND e."instanceId" = v.id AND e."endedAt" IS NULL AND e.state <> v.state
    AND e.since <= v.at + (v.precision_ms + 1) * interval '1 millisecond'
  RETURNING ${EPISODE_COLUMNS}, ${utc("endedAt")}, e."endState"`;

/** Opens an episode, or finds the open one of the same state: the row either way, in one statement. */
const CONTINUE_SQL = `
  INSERT INTO "StateEpisode" AS e (id, "instanceId", state, since, "seenAt")
  SELECT gen_random_uuid(), v.id, v.state, v.at, v.at FROM unnest($1::uuid[], $2::text[], $3::timestamptz[]) AS v(id, state, at) ORDER BY v.id
  ON CONFLICT ("instanceId") WHERE "endedAt" IS NULL
  DO UPDATE SET "seenAt" = GREATEST(e."seenAt", EXCLUDED."seenAt") WHERE e.state = EXCLUDED.state
  RETURNING ${EPISODE_COLUMNS}`;

/**
 * Follows the episodes of states just recorded (each report was written): a page of them in a few
 * statements. `ending` are the reports that may end an episode (by default all of them): a report
 * of the state the instance was already in, with no episode of another state open, cannot.
 */
export async function followStates(ctx: FleetContext, reports: readonly StateReport[], ending: readonly StateReport[] = reports): Promise<void> {
  if (ending.length > 0) await endEpisodes(ctx, ending);
  const watched = reports.filter((r) => watchesEpisodes(r.state, ctx.config.QRFLEET_STATE_POLICIES));
  if (watched.length === 0) return;
  const { rows } = await ctx.sql.query<Episode>(CONTINUE_SQL, [
    watched.map((r) => r.instance.id), watched.map((r) => r.state), watched.map((r) => r.at),
  ]);
  const byInstance = new Map(watched.map((r) => [r.instance.id, r]));
  await Promise.all(rows.map((e) => actOn(ctx, e, byInstance.get(e.instanceId)!.at)));
}

/** The ends and their "recovered" events commit together: an alerted episode never ends unannounced. */
async function endEpisodes(ctx: FleetContext, reports: readonly StateReport[]): Promise<void> {
  const { alerted, deliveryIds } = await ctx.db.$transaction(async (tx) => {
    const ended = await tx.$queryRawUnsafe<Array<Episode & { endedAt: Date; endState: string }>>(
      END_SQL, reports.map((r) => r.instance.id), reports.map((r) => r.state), reports.map((r) => r.at), reports.map((r) => r.precisionMs ?? 0),
    );
    const alerted = ended.filter((e) => e.alertedAt !== null);
    const ids: string[] = [];
    for (const e of alerted) ids.push(...(await recordInstanceEvent(ctx, tx, e, "instance.recovered", { endedAt: e.endedAt, endState: e.endState })));
    return { alerted, deliveryIds: ids };
  });
  await addNotifyJobs(ctx.queues, deliveryIds);
  for (const e of alerted) ctx.events.emit("instance:episode", { instanceId: e.instanceId, state: e.state, step: "recovered", detail: e.endState });
}

/** What the episode's policy asks for at `at` (the report's time), if anything. */
async function actOn(ctx: FleetContext, e: Episode, at: Date): Promise<void> {
  const c = ctx.config;
  const inState = at.getTime() - e.since.getTime();
  switch (c.QRFLEET_STATE_POLICIES[e.state as keyof typeof c.QRFLEET_STATE_POLICIES]) {
    case "alert":
      return alertOnce(ctx, e, {});
    case "warn_unlink":
      if (inState < c.QRFLEET_SLEEP_WARN_AFTER_MS) return;
      // The stretch began at the first report of the state: within one sweep of the phone going offline.
      return alertOnce(ctx, e, { deadline: new Date(e.since.getTime() + c.QRFLEET_SLEEP_UNLINK_AFTER_MS) });
    case "reboot":
      if (e.rebootedAt === null) return inState < c.QRFLEET_REBOOT_AFTER_MS ? undefined : rebootOnce(ctx, e);
      if (at.getTime() - e.rebootedAt.getTime() < c.QRFLEET_REBOOT_ALERT_AFTER_MS) return;
      return alertOnce(ctx, e, { rebootedAt: e.rebootedAt });
    default:
      return; // the policy changed since the episode opened: it ends with the state
  }
}

/** The episode's one reboot: claimed before the call, so a reboot that fails is not repeated (the alert follows). */
async function rebootOnce(ctx: FleetContext, e: Episode): Promise<void> {
  const { count } = await ctx.db.stateEpisode.updateMany({ where: { id: e.id, rebootedAt: null, endedAt: null }, data: { rebootedAt: new Date() } });
  if (count !== 1) return;
  const inst = await ctx.db.instance.findUnique({ where: { id: e.instanceId } });
  const provider = inst ? providerFor(ctx, inst) : null;
  if (!provider) return;
  try {
    const rebooted = await provider.client.reboot();
    ctx.events.emit("instance:episode", { instanceId: e.instanceId, state: e.state, step: rebooted ? "rebooted" : "reboot_refused" });
  } catch (err) {
    ctx.events.emit("instance:episode", { instanceId: e.instanceId, state: e.state, step: "reboot_failed", detail: (err as Error).message });
  }
}

/** Alerts the operators, once per episode: the claim and the event with its deliveries commit together. */
async function alertOnce(ctx: FleetContext, e: Episode, extra: { deadline?: Date; rebootedAt?: Date }): Promise<void> {
  const deliveryIds = await ctx.db.$transaction(async (tx) => {
    const { count } = await tx.stateEpisode.updateMany({
      where: { id: e.id, alertedAt: null, endedAt: null },
      data: { alertedAt: new Date(), deadline: extra.deadline ?? null },
    });
    return count === 1 ? recordInstanceEvent(ctx, tx, e, "instance.alert", extra) : null;
  });
  if (deliveryIds === null) return;
  await addNotifyJobs(ctx.queues, deliveryIds);
  ctx.events.emit("instance:episode", { instanceId: e.instanceId, state: e.state, step: extra.deadline ? "warned" : "alerted" });
}

function recordInstanceEvent(
  ctx: FleetContext,
  tx: Tx,
  e: Episode,
  type: "instance.alert" | "instance.recovered",
  data: Record<string, unknown>,
): Promise<string[]> {
  return recordEvent(
    tx,
    { type, instanceId: e.instanceId, sessionId: null, attempt: null, everyTier: true, data: { episodeId: e.id, state: e.state, since: e.since, ...data } },
    { escalateAfter: ctx.config.QRFLEET_ESCALATE_AFTER },
  );
}
