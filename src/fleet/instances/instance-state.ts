import { retryOnDeadlock } from "../../db.js";
import type { InstanceState } from "../../greenapi/types.js";
import { DEFAULT_STATE_POLICIES, type StatePolicies, type StatePolicy } from "../../state-policies.js";
import { followStates, watchesEpisodes } from "./alerts.js";
import type { FleetContext } from "../context.js";
import type { StateReport } from "./state-report.js";

/**
 * The one writer of an instance's provider state (`lastState`, `lastStateAt`, `unlinkedSince`),
 * whoever learnt it: the sweep, the provider's webhook, the check after a scan.
 */

export type { StateReport } from "./state-report.js";

/** What the statement found for a report it wrote: the state before it, and what the callers' policies ask about. */
export interface WrittenState {
  previous: string | null;
  enabled: boolean;
  expectedPhone: string | null;
  /** The session open (queued or running) as the state was written, if any. */
  openSessionId: string | null;
  /**
   * An episode of another state may be open: the instance was in a state followed as episodes,
   * or one is open. Only then can this report end one (fleet/instances/alerts.ts).
   */
  mayEndEpisode: boolean;
}

/**
 * What a recorded state leads to, wherever it was learnt (the sweep, the provider's webhook, the
 * check after a scan): the policy QRFLEET_STATE_POLICIES gives it (src/state-policies.ts).
 * Sessions are the caller's part (`start_session`, `end_session`); episodes, reboots and alerts
 * are followed here, for every writer alike (fleet/instances/alerts.ts).
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
 * not written: with whole-second timestamps, a report of second T is older than a record of T + 1 s
 * or later. The rows are locked in id order first, so two daemons writing the same instances at
 * once wait for each other; the rare deadlock PostgreSQL still finds (row versions moving under
 * the lock) is retried. The lock reads the newest `lastState`, so `previous` is the state this
 * write replaced.
 */
const RECORD_SQL = `
  WITH v AS (SELECT * FROM unnest($1::uuid[], $2::text[], $3::timestamptz[], $4::int[], $5::bool[]) AS v(id, state, at, precision_ms, via_hook)),
  locked AS MATERIALIZED (SELECT i.id, i."lastState" FROM "Instance" i WHERE i.id IN (SELECT id FROM v) ORDER BY i.id FOR NO KEY UPDATE)
  UPDATE "Instance" i SET "lastState" = v.state, "lastStateAt" = v.at,
    "unlinkedSince" = ${unlinkedSinceSql("v.state", "v.at")},
    "hookState" = CASE WHEN v.via_hook THEN v.state ELSE i."hookState" END,
    "hookSeenAt" = CASE WHEN v.via_hook THEN now() ELSE i."hookSeenAt" END,
    "updatedAt" = now()
  FROM v JOIN locked l ON l.id = v.id
  WHERE i.id = v.id AND (i."lastStateAt" IS NULL OR i."lastStateAt" < v.at + GREATEST(v.precision_ms, 1) * interval '1 millisecond')
  RETURNING i.id, l."lastState" AS previous, i.enabled, i."expectedPhone",
    (SELECT s.id FROM "QrSession" s WHERE s."instanceId" = i.id AND s.status IN ('queued', 'running') LIMIT 1) AS "openSessionId",
    EXISTS (SELECT 1 FROM "StateEpisode" e WHERE e."instanceId" = i.id AND e."endedAt" IS NULL AND e.state <> v.state) AS "otherEpisodeOpen"`;

/**
 * One report per instance, the newest (of equal times, the later in the list): one statement
 * cannot write a row twice, and the newest is what a write of them one by one would leave.
 */
export function newestPerInstance<R extends StateReport>(reports: readonly R[]): R[] {
  const newest = new Map<string, R>();
  for (const r of reports) {
    const seen = newest.get(r.instance.id);
    if (!seen || seen.at.getTime() <= r.at.getTime()) newest.set(r.instance.id, r);
  }
  return [...newest.values()];
}

/**
 * Writes the reports (the newest per instance) in one statement, in instance id order so every
 * statement meets the rows in one order, and emits `instance:state` for each change. Returns what
 * it found for each instance whose state was written; the others knew something newer.
 * Episodes are the caller's next step (`followStates`, or `recordInstanceStates` for both).
 */
export async function writeInstanceStates(ctx: FleetContext, unordered: readonly StateReport[]): Promise<Map<string, WrittenState>> {
  if (unordered.length === 0) return new Map();
  const reports = newestPerInstance(unordered).sort((a, b) => (a.instance.id < b.instance.id ? -1 : a.instance.id > b.instance.id ? 1 : 0));
  const { rows } = await retryOnDeadlock(() => ctx.sql.query<Omit<WrittenState, "mayEndEpisode"> & { id: string; otherEpisodeOpen: boolean }>({
    // Prepared once per connection: a storm of small batches is planned once, not once per batch.
    name: "qrfleet-record-states-v2",
    text: RECORD_SQL,
    values: [
      reports.map((r) => r.instance.id), reports.map((r) => r.state), reports.map((r) => r.at), reports.map((r) => r.precisionMs ?? 0),
      reports.map((r) => r.viaHook === true),
    ],
  }));
  const byId = new Map(rows.map((row) => [row.id, row]));
  const written = new Map<string, WrittenState>();
  for (const { instance, state, at } of reports) {
    const row = byId.get(instance.id);
    if (!row) {
      ctx.log.info({ instanceId: instance.id, state, at }, "instance state older than the recorded one: ignored");
      continue;
    }
    const { id: _id, otherEpisodeOpen, ...found } = row;
    const leaves = found.previous !== null && found.previous !== state && watchesEpisodes(found.previous, ctx.config.QRFLEET_STATE_POLICIES);
    written.set(instance.id, { ...found, mayEndEpisode: otherEpisodeOpen || leaves });
    if (state !== found.previous) ctx.events.emit("instance:state", { instanceId: instance.id, state });
  }
  return written;
}

/** Follows the episodes of written reports: only those that may end one go through the ending transaction. */
export async function followWrittenStates(ctx: FleetContext, reports: readonly StateReport[], written: ReadonlyMap<string, WrittenState>): Promise<void> {
  const kept = reports.filter((r) => written.has(r.instance.id));
  await followStates(ctx, kept, kept.filter((r) => written.get(r.instance.id)!.mayEndEpisode));
}

/** Records the reports and follows their episodes (fleet/instances/alerts.ts); returns the ids whose state was written. */
export async function recordInstanceStates(ctx: FleetContext, reports: readonly StateReport[]): Promise<Set<string>> {
  const written = await writeInstanceStates(ctx, reports);
  await followWrittenStates(ctx, newestPerInstance(reports), written);
  return new Set(written.keys());
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
