import { setTimeout as sleep } from "node:timers/promises";
import type { Config } from "../../config.js";
import type { SessionTrigger } from "../../db.js";
import type { FleetContext } from "../context.js";
import { PHASES, slicePlan } from "./sweep-slices.js";
import { NOT_IN_SESSION, StateSweep, TARGET_COLUMNS, unconfirmedBefore, type SweepResult, type SweepTarget } from "./state-sweep.js";

export type { SweepResult } from "./state-sweep.js";

/**
 * The full sweep: every enabled instance polled once, a page at a time, its calls spaced evenly
 * over QRFLEET_SWEEP_SPREAD_MS. A daemon runs one at start (instances may have been logged out
 * while none ran); from then on the sweep's slices (sweep-slices.ts) poll each instance once an
 * interval, shared by every daemon.
 */

const PAGE = 500;

export interface FullSweepOptions {
  pageSize?: number;
  /** Only instances whose state nobody confirmed lately (the start-up sweep): see unconfirmedBefore. */
  staleOnly?: boolean;
}

/**
 * $1 stale before (null: all); $2, $3: with the sweep's slices on, only instances whose own slot is
 * at least $3 phases after phase $2 (the slices reach the others first). $3 = 0: no such rule.
 */
const DUE_SQL = `i.enabled AND i.attention IS NULL AND ${NOT_IN_SESSION}
    AND ($1::timestamptz IS NULL OR i."lastStateAt" IS NULL OR i."lastStateAt" < $1)
    AND ($3::int = 0 OR (i."sweepPhase" - $2::int + ${PHASES}) % ${PHASES} >= $3::int)`;

const FULL_SWEEP_SQL = `SELECT ${TARGET_COLUMNS} FROM "Instance" i WHERE ${DUE_SQL} AND i.id > $4 ORDER BY i.id LIMIT $5`;

const COUNT_SQL = `SELECT count(*)::int AS n FROM "Instance" i WHERE ${DUE_SQL}`;

/**
 * Which instances the start-up sweep leaves to the slices: those whose own slot comes before the
 * start-up sweep would be done (`horizonMs`), so none is polled twice in a few seconds, and a large
 * fleet's start does not pile a second sweep onto the slices' (it made their slots late).
 */
function leftToSlices(config: Config, horizonMs: number, now = Date.now()): [phaseNow: number, aheadAtLeast: number] {
  const plan = slicePlan(config);
  if (!plan || horizonMs <= 0) return [0, 0];
  const phaseNow = Math.floor(((now % plan.intervalMs) * PHASES) / plan.intervalMs);
  return [phaseNow, Math.min(PHASES, Math.ceil((horizonMs * PHASES) / plan.intervalMs))];
}

async function countDue(ctx: FleetContext, due: readonly unknown[]): Promise<number> {
  const { rows: [count] } = await ctx.sql.query<{ n: number }>(COUNT_SQL, [...due]);
  return count!.n;
}

export async function sweepFleet(ctx: FleetContext, signal?: AbortSignal, options: FullSweepOptions = {}): Promise<SweepResult> {
  const staleBefore = options.staleOnly ? unconfirmedBefore(ctx.config) : null;
  const stale = await countDue(ctx, [staleBefore, 0, 0]);
  const [phaseNow, aheadAtLeast] = options.staleOnly ? leftToSlices(ctx.config, sweepGapMs(ctx.config, stale) * stale) : [0, 0];
  const due = [staleBefore, phaseNow, aheadAtLeast];
  const pacer = new Pacer(sweepGapMs(ctx.config, aheadAtLeast === 0 ? stale : await countDue(ctx, due)));
  const sweep = new StateSweep(ctx, "sweep", signal);
  let cursor = "00000000-0000-0000-0000-000000000000";
  while (!signal?.aborted) {
    const { rows } = await ctx.sql.query<SweepTarget>(FULL_SWEEP_SQL, [...due, cursor, options.pageSize ?? PAGE]);
    if (rows.length === 0) break;
    cursor = rows[rows.length - 1]!.id;
    const tokens = await sweep.prepare(rows);
    for (let i = 0; i < rows.length; i += 1) {
      await pacer.turn(signal);
      if (signal?.aborted) break;
      await sweep.poll(rows[i]!, tokens[i]);
    }
  }
  const result = await sweep.finish();
  ctx.log.info({ sweep: result }, "fleet sweep done");
  return result;
}

/**
 * The wait between two of a sweep's calls: `due` instances spread evenly over the window (kept
 * under 90% of a periodic sweep's interval), but never slower than the floor
 * rate, so a small fleet is not made to wait out the window for nobody's benefit.
 */
export function sweepGapMs(config: Config, due: number): number {
  const spreadMs = spreadOf(config);
  if (spreadMs === 0 || due <= 1) return 0;
  return Math.min(spreadMs / due, 1000 / config.QRFLEET_SWEEP_MIN_RATE_PER_S);
}

function spreadOf(config: Config): number {
  const interval = config.QRFLEET_SWEEP_INTERVAL_MS;
  return interval === 0 ? config.QRFLEET_SWEEP_SPREAD_MS : Math.min(config.QRFLEET_SWEEP_SPREAD_MS, 0.9 * interval);
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

const ONE_SQL = `SELECT ${TARGET_COLUMNS}, i.enabled, i.attention FROM "Instance" i WHERE i.id = $1`;

/** An instance's own re-auth schedule: the sweep's check for that one instance, if it still exists and is enabled. */
export async function reauthInstance(ctx: FleetContext, instanceId: string, signal?: AbortSignal): Promise<SweepResult | "gone" | "needs attention"> {
  const { rows: [inst] } = await ctx.sql.query<SweepTarget & { enabled: boolean; attention: string | null }>(ONE_SQL, [instanceId]);
  if (!inst || !inst.enabled) return "gone";
  // Like the sweep: an instance the provider refused is left alone until an admin sets its token.
  return inst.attention === null ? checkInstances(ctx, [inst], "schedule", signal) : "needs attention";
}

/** Polls, records and acts on these instances' states: sessions here, episodes and alerts in recordInstanceStates. */
export async function checkInstances(ctx: FleetContext, targets: readonly SweepTarget[], trigger: SessionTrigger, signal?: AbortSignal): Promise<SweepResult> {
  const sweep = new StateSweep(ctx, trigger, signal);
  for (const target of targets) await sweep.poll(target);
  return sweep.finish();
}
