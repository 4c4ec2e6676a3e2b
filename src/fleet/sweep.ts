import type { Instance, SessionTrigger } from "../db.js";
import { GreenApiError } from "../greenapi/errors.js";
import type { InstanceState } from "../greenapi/types.js";
import type { FleetContext } from "./context.js";
import { instanceAddress, providerClient } from "./provider.js";
import { enqueueSessions } from "./sessions.js";

/**
 * The fleet sweep: every enabled instance's state, polled with bounded concurrency, recorded a
 * page at a time in one statement, and one bulk enqueue per page for the logged-out ones. A fleet
 * of 10,000 is swept in seconds, and its first sessions start after the first page.
 */

const PAGE = 500;

export interface SweepResult {
  checked: number;
  notAuthorized: number;
  enqueued: number;
  errors: number;
}

type Polled = { inst: Instance; state: InstanceState; at: Date } | { inst: Instance; error: string };

export async function sweepFleet(ctx: FleetContext, signal?: AbortSignal, pageSize = PAGE): Promise<SweepResult> {
  const result: SweepResult = { checked: 0, notAuthorized: 0, enqueued: 0, errors: 0 };
  let cursor: string | undefined;
  for (;;) {
    if (signal?.aborted) break;
    const page = await ctx.db.instance.findMany({
      // An instance with a session open is not polled: its socket says more, and sooner.
      where: { enabled: true, attention: null, sessions: { none: { status: { in: ["queued", "running"] } } }, ...(cursor && { id: { gt: cursor } }) },
      orderBy: { id: "asc" },
      take: pageSize,
    });
    if (page.length === 0) break;
    cursor = page[page.length - 1]!.id;
    add(result, await checkInstances(ctx, page, "sweep", signal));
  }
  ctx.log.info({ sweep: result }, "fleet sweep done");
  return result;
}

/** Polls, records and (where logged out) starts sessions for these instances. */
export async function checkInstances(
  ctx: FleetContext,
  instances: readonly Instance[],
  trigger: SessionTrigger,
  signal?: AbortSignal,
): Promise<SweepResult> {
  const polled: Polled[] = [];
  await forEachLimited(instances, ctx.config.QRFLEET_SWEEP_CONCURRENCY, async (inst) => void polled.push(await poll(ctx, inst, signal)));
  const states = polled.filter((p): p is Extract<Polled, { state: InstanceState }> => "state" in p);
  const written = await recordStates(ctx, states);
  const loggedOut = states.filter((p) => p.state === "notAuthorized" && written.has(p.inst.id)).map((p) => p.inst.id);
  const { created } = await enqueueSessions(ctx, { ids: loggedOut }, trigger);
  return { checked: polled.length, notAuthorized: loggedOut.length, enqueued: created, errors: polled.length - states.length };
}

async function poll(ctx: FleetContext, inst: Instance, signal?: AbortSignal): Promise<Polled> {
  const addr = instanceAddress(ctx, inst);
  if (!addr) return { inst, error: "unreadable_token" };
  try {
    const { state } = await providerClient(ctx, addr).getStateInstance(signal);
    return { inst, state, at: new Date() };
  } catch (err) {
    const code = err instanceof GreenApiError ? err.code : "error";
    if (err instanceof GreenApiError && !err.transient) {
      await ctx.db.instance.update({ where: { id: inst.id }, data: { attention: code } });
    }
    ctx.log.warn({ instanceId: inst.id, code, err: (err as Error).message }, "state check failed");
    return { inst, error: code };
  }
}

/**
 * One statement for a page of states. A state older than what the instance already records (a
 * provider webhook that came in while we polled) does not overwrite it.
 */
const RECORD_STATES_SQL = `
  UPDATE "Instance" i SET "lastState" = v.state, "lastStateAt" = v.at,
    "unlinkedSince" = CASE WHEN v.state = 'notAuthorized' THEN COALESCE(i."unlinkedSince", v.at)
                           WHEN v.state = 'authorized' THEN NULL ELSE i."unlinkedSince" END,
    "updatedAt" = now()
  FROM unnest($1::uuid[], $2::text[], $3::timestamptz[]) AS v(id, state, at)
  WHERE i.id = v.id AND (i."lastStateAt" IS NULL OR i."lastStateAt" <= v.at)
  RETURNING i.id`;

/** Returns the instances whose state was written (the others knew something newer). */
async function recordStates(ctx: FleetContext, states: ReadonlyArray<{ inst: Instance; state: InstanceState; at: Date }>): Promise<Set<string>> {
  if (states.length === 0) return new Set();
  const { rows } = await ctx.sql.query<{ id: string }>(RECORD_STATES_SQL, [
    states.map((s) => s.inst.id), states.map((s) => s.state), states.map((s) => s.at),
  ]);
  const written = new Set(rows.map((r) => r.id));
  for (const { inst, state } of states) {
    if (written.has(inst.id) && state !== inst.lastState) ctx.events.emit("instance:state", { instanceId: inst.id, state });
  }
  return written;
}

function add(total: SweepResult, part: SweepResult): void {
  total.checked += part.checked;
  total.notAuthorized += part.notAuthorized;
  total.enqueued += part.enqueued;
  total.errors += part.errors;
}

/** Runs `fn` over `items`, at most `limit` at a time; `fn` handles its own errors. */
async function forEachLimited<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
}
