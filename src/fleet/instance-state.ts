import type { Instance } from "../db.js";
import type { InstanceState } from "../greenapi/types.js";
import { DEFAULT_STATE_POLICIES, type StatePolicies, type StatePolicy } from "../state-policies.js";
import { followStates } from "./alerts.js";
import type { FleetContext } from "./context.js";

/**
 * The one writer of an instance's provider state (`lastState`, `lastStateAt`, `unlinkedSince`),
 * whoever learnt it: the sweep, the provider's webhook, the check after a scan.
 */

export interface StateReport {
  instance: Pick<Instance, "id" | "lastState">;
  state: InstanceState;
  /** When the provider was in this state. */
  at: Date;
  /**
   * How coarse `at` is: the provider's webhook timestamps have whole seconds, so a report in the
   * same second as the recorded one is not older than it. 0 for our own clock.
   */
  precisionMs?: number;
}

/**
 * What a recorded state leads to, wherever it was learnt (the sweep, the provider's webhook, the
 * check after a scan): the policy QRFLEET_STATE_POLICIES gives it (src/state-policies.ts).
 * Sessions are the caller's part (`start_session`, `end_session`); episodes, reboots and alerts
 * are followed here, for every writer alike (fleet/alerts.ts).
 */
export function policyFor(state: InstanceState, policies: StatePolicies = DEFAULT_STATE_POLICIES): StatePolicy {
  return policies[state];
}

/** Since when the instance has been logged out, given the state it is now in and since when. */
export function unlinkedSinceSql(state: string, at: string): string {
  return `CASE WHEN ${state} = 'notAuthorized' THEN COALESCE(i."unlinkedSince", ${at})
               WHEN ${state} = 'authorized' THEN NULL ELSE i."unlinkedSince" END`;
}

/**
 * A report older than what the instance records (a webhook that overtook a poll, a late retry) is
 * not written. The rows are locked in id order first: two daemons writing the same instances at
 * once then wait for each other instead of deadlocking, whatever plan the update gets.
 */
const RECORD_SQL = `
  WITH v AS (SELECT * FROM unnest($1::uuid[], $2::text[], $3::timestamptz[], $4::int[]) AS v(id, state, at, precision_ms)),
  locked AS MATERIALIZED (SELECT i.id FROM "Instance" i WHERE i.id IN (SELECT id FROM v) ORDER BY i.id FOR NO KEY UPDATE)
  UPDATE "Instance" i SET "lastState" = v.state, "lastStateAt" = v.at,
    "unlinkedSince" = ${unlinkedSinceSql("v.state", "v.at")}, "updatedAt" = now()
  FROM v JOIN locked l ON l.id = v.id
  WHERE i.id = v.id AND (i."lastStateAt" IS NULL OR i."lastStateAt" < v.at + (v.precision_ms + 1) * interval '1 millisecond')
  RETURNING i.id, EXISTS (SELECT 1 FROM "StateEpisode" e WHERE e."instanceId" = i.id AND e."endedAt" IS NULL AND e.state <> v.state) AS ends`;

/**
 * Records the reports in one statement, which also tells whose open episode is of another state,
 * then follows their episodes (fleet/alerts.ts); returns
 * the ids whose state was written (the others knew something newer and are not acted on).
 * The reports go in instance id order, so every statement meets the rows in one order.
 */
export async function recordInstanceStates(ctx: FleetContext, unordered: readonly StateReport[]): Promise<Set<string>> {
  if (unordered.length === 0) return new Set();
  const reports = [...unordered].sort((a, b) => (a.instance.id < b.instance.id ? -1 : a.instance.id > b.instance.id ? 1 : 0));
  const { rows } = await ctx.sql.query<{ id: string; ends: boolean }>(RECORD_SQL, [
    reports.map((r) => r.instance.id), reports.map((r) => r.state), reports.map((r) => r.at), reports.map((r) => r.precisionMs ?? 0),
  ]);
  const written = new Set(rows.map((r) => r.id));
  for (const { instance, state, at } of reports) {
    if (!written.has(instance.id)) ctx.log.info({ instanceId: instance.id, state, at }, "instance state older than the recorded one: ignored");
    else if (state !== instance.lastState) ctx.events.emit("instance:state", { instanceId: instance.id, state });
  }
  const ending = new Set(rows.filter((r) => r.ends).map((r) => r.id));
  await followStates(ctx, reports.filter((r) => written.has(r.instance.id)), ending);
  return written;
}

export async function recordInstanceState(ctx: FleetContext, report: StateReport): Promise<boolean> {
  return (await recordInstanceStates(ctx, [report])).has(report.instance.id);
}

/**
 * The provider refused the instance for good (a revoked token, an unknown instance): it is left
 * alone — no polls, no sessions — until an admin sets its token again, which clears the flag.
 * An attempt that ends this way sets the same flag in its own statement (attempts.ts).
 */
export async function flagForAttention(ctx: FleetContext, instanceId: string, code: string): Promise<void> {
  await ctx.db.instance.update({ where: { id: instanceId }, data: { attention: code } });
  ctx.log.warn({ instanceId, attention: code }, "instance needs an admin: the provider refused it");
}
