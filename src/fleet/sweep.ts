import { setTimeout as sleep } from "node:timers/promises";
import type { Config } from "../config.js";
import type { Instance, Prisma, SessionTrigger } from "../db.js";
import { GreenApiError } from "../greenapi/errors.js";
import type { InstanceState } from "../greenapi/types.js";
import type { FleetContext } from "./context.js";
import { flagForAttention, policyFor, recordInstanceStates } from "./instance-state.js";
import { providerFor } from "./provider.js";
import { enqueueSessions } from "./sessions.js";

/**
 * The fleet sweep: every enabled instance's state, polled with bounded concurrency, recorded a
 * page at a time in one statement, and one bulk enqueue per page for the logged-out ones. The
 * calls are spaced evenly over QRFLEET_SWEEP_SPREAD_MS rather than burst at the provider (whose
 * limits are per second), so a fleet of 10,000 is swept within one interval, and its first
 * sessions start after the first page.
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
  // An instance with a session open is not polled: its socket says more, and sooner.
  const due: Prisma.InstanceWhereInput = { enabled: true, attention: null, sessions: { none: { status: { in: ["queued", "running"] } } } };
  const pacer = new Pacer(sweepGapMs(ctx.config, await ctx.db.instance.count({ where: due })));
  let cursor: string | undefined;
  for (;;) {
    if (signal?.aborted) break;
    const page = await ctx.db.instance.findMany({
      where: { ...due, ...(cursor && { id: { gt: cursor } }) },
      orderBy: { id: "asc" },
      take: pageSize,
    });
    if (page.length === 0) break;
    cursor = page[page.length - 1]!.id;
    add(result, await checkInstances(ctx, page, "sweep", signal, pacer));
  }
  ctx.log.info({ sweep: result }, "fleet sweep done");
  return result;
}

/**
 * The wait between two of a sweep's calls: `due` instances spread evenly over the window (kept
 * under 90% of the interval, so one sweep ends before the next), but never slower than the floor
 * rate, so a small fleet is not made to wait out the window for nobody's benefit.
 */
export function sweepGapMs(config: Config, due: number): number {
  const spreadMs = Math.min(config.QRFLEET_SWEEP_SPREAD_MS, 0.9 * config.QRFLEET_SWEEP_INTERVAL_MS);
  if (spreadMs === 0 || due <= 1) return 0;
  return Math.min(spreadMs / due, 1000 / config.QRFLEET_SWEEP_MIN_RATE_PER_S);
}

/** Evenly spaced turns; one that falls behind (the lanes are all busy) is not caught up with a burst. */
export class Pacer {
  private next = Date.now();

  constructor(private readonly gapMs: number) {}

  async turn(signal?: AbortSignal): Promise<void> {
    if (this.gapMs === 0) return;
    const at = Math.max(this.next, Date.now());
    this.next = at + this.gapMs;
    const wait = at - Date.now();
    if (wait > 0) await sleep(wait, undefined, { signal }).catch(() => undefined);
  }
}

/** An instance's own re-auth schedule: the sweep's check for that one instance, if it still exists and is enabled. */
export async function reauthInstance(ctx: FleetContext, instanceId: string, signal?: AbortSignal): Promise<SweepResult | "gone" | "needs attention"> {
  const inst = await ctx.db.instance.findUnique({ where: { id: instanceId } });
  if (!inst || !inst.enabled) return "gone";
  // Like the sweep: an instance the provider refused is left alone until an admin sets its token.
  return inst.attention === null ? checkInstances(ctx, [inst], "schedule", signal) : "needs attention";
}

/** Polls, records and acts on these instances' states: sessions here, episodes and alerts in recordInstanceStates. */
export async function checkInstances(
  ctx: FleetContext,
  instances: readonly Instance[],
  trigger: SessionTrigger,
  signal?: AbortSignal,
  pacer = new Pacer(0),
): Promise<SweepResult> {
  const polled: Polled[] = [];
  await forEachLimited(instances, ctx.config.QRFLEET_SWEEP_CONCURRENCY, async (inst) => {
    await pacer.turn(signal);
    if (!signal?.aborted) polled.push(await poll(ctx, inst, signal));
  });
  const states = polled.filter((p): p is Extract<Polled, { state: InstanceState }> => "state" in p);
  const written = await recordInstanceStates(ctx, states.map(({ inst, state, at }) => ({ instance: inst, state, at })));
  const policies = ctx.config.QRFLEET_STATE_POLICIES;
  const loggedOut = states.filter((p) => policyFor(p.state, policies) === "start_session" && written.has(p.inst.id)).map((p) => p.inst.id);
  const { created } = await enqueueSessions(ctx, { ids: loggedOut }, trigger);
  return { checked: polled.length, notAuthorized: loggedOut.length, enqueued: created, errors: polled.length - states.length };
}

async function poll(ctx: FleetContext, inst: Instance, signal?: AbortSignal): Promise<Polled> {
  const provider = providerFor(ctx, inst);
  if (!provider) return { inst, error: "unreadable_token" };
  try {
    const { state } = await provider.client.getStateInstance(signal);
    return { inst, state, at: new Date() };
  } catch (err) {
    const code = err instanceof GreenApiError ? err.code : "error";
    if (err instanceof GreenApiError && !err.transient) {
      await flagForAttention(ctx, inst.id, code);
    }
    ctx.log.warn({ instanceId: inst.id, code, err: (err as Error).message }, "state check failed");
    return { inst, error: code };
  }
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
