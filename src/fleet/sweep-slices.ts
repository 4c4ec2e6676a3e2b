import { setTimeout as sleep } from "node:timers/promises";
import type { Config } from "../config.js";
import { addSliceJob, type SliceJob } from "../queues.js";
import type { FleetContext } from "./context.js";
import { hostBudgetOf } from "./host-budget.js";
import { NOT_IN_SESSION, StateSweep, TARGET_COLUMNS, type SweepTarget } from "./state-sweep.js";

/**
 * The sweep every daemon shares. Each instance has a phase (`sweepPhase`, 0…65535): the point in
 * each interval where it is polled. The interval is cut into slices, one queue job each, which
 * any daemon's sweep worker takes as it comes due (a quarter of a slice early, so the slot's rows
 * are read by the time its first instance is due), so the work is shared and the calls are spread
 * evenly. A slot (one slice of one interval) is one job with its own id, so it is never swept
 * twice; each slot's job first adds the next one, so the chain skips no slot however late a job is
 * taken. A slot held by a daemon that died is taken over when its lock runs out, and swept late
 * unless the next interval's slot of the same slice is already due.
 *
 * Each daemon sweeps one slot at a time, and while other daemons are alive it holds its slot a
 * little past the slot's end (HAND_OVER_SHARE of a slice), so the next slot falls to a daemon that
 * is free: the slots go round the daemons in turn rather than to whichever wakes first. A slot's
 * answers are recorded after its job ends, so a slow provider never makes the next slot wait.
 *
 * An instance whose provider webhook is trusted (a `hookState` that agrees with `lastState`) is polled
 * only every QRFLEET_SWEEP_INTERVAL_HOOKED_MS, in the intervals its phase picks, as a backstop.
 */

export const PHASES = 65_536;
/** A slice is never shorter than this: a job per slot costs a few Redis calls. */
const MIN_SLICE_MS = 500;

export interface SlicePlan {
  slices: number;
  sliceMs: number;
  /** slices × sliceMs: QRFLEET_SWEEP_INTERVAL_MS, rounded to whole milliseconds per slice. */
  intervalMs: number;
  /** A trusted webhook's instance is polled every this many intervals. */
  hookedEvery: number;
}

/** The plan of the sliced sweep, or null when QRFLEET_SWEEP_INTERVAL_MS is 0 (no periodic sweep). */
export function slicePlan(config: Config): SlicePlan | null {
  const interval = config.QRFLEET_SWEEP_INTERVAL_MS;
  if (interval === 0) return null;
  const slices = Math.max(1, Math.min(config.QRFLEET_SWEEP_SLICES, Math.floor(interval / MIN_SLICE_MS)));
  const sliceMs = Math.round(interval / slices);
  const hooked = config.QRFLEET_SWEEP_INTERVAL_HOOKED_MS;
  return { slices, sliceMs, intervalMs: slices * sliceMs, hookedEvery: Math.max(1, Math.round(hooked / (slices * sliceMs))) };
}

export interface Slot {
  cycle: number;
  slice: number;
  /** When the slot's interval began, ms since the epoch. */
  cycleStartMs: number;
  startMs: number;
}

/** The slot a slice job scheduled at `atMs` stands for: the one that holds that moment. */
export function slotAt(plan: SlicePlan, atMs: number): Slot {
  const n = Math.floor(atMs / plan.sliceMs);
  const cycle = Math.floor(n / plan.slices);
  return { cycle, slice: n - cycle * plan.slices, cycleStartMs: cycle * plan.intervalMs, startMs: n * plan.sliceMs };
}

/** The phases [from, to) of a slice. */
export function phasesOf(plan: SlicePlan, slice: number): [number, number] {
  return [Math.floor((slice * PHASES) / plan.slices), Math.floor(((slice + 1) * PHASES) / plan.slices)];
}

/**
 * Due in this slot: enabled, not flagged, no session open, not heard of in the last moments
 * (JUST_HEARD_SHARE of an interval: a webhook or the start-up sweep just did), and, if its webhook
 * is trusted, in one of its intervals.
 */
const SLOT_SQL = `
  SELECT ${TARGET_COLUMNS}, i."sweepPhase" FROM "Instance" i
  WHERE i.enabled AND i.attention IS NULL AND i."sweepPhase" >= $1 AND i."sweepPhase" < $2
    AND (i."lastStateAt" IS NULL OR i."lastStateAt" < $3)
    AND ($4::int = 1 OR i."hookState" IS NULL OR i."hookState" <> i."lastState" OR i."lastState" IS NULL OR i."sweepPhase" % $4 = $5)
    AND ${NOT_IN_SESSION}
  ORDER BY i."sweepPhase"`;

/**
 * An instance skipped because it was just heard of waits for its next slot: its gap grows by at
 * most this share of an interval, well inside the interval + 10 % every instance is checked in.
 */
const JUST_HEARD_SHARE = 1 / 20;

/**
 * Instances due within this long of each other are polled together: one wake-up of the event loop
 * for a handful of polls rather than one each, a few milliseconds off their exact phase.
 */
const TICK_MS = 10;

/** While other daemons are alive, a slot's job ends this share of a slice after the slot does. */
const HAND_OVER_SHARE = 1 / 4;

/**
 * A slot's polls never go faster than this many times its average rate: instances whose turn has
 * passed (a slot taken late) or that fall close together are caught up over a few ticks, not sent
 * in one burst that would need connections the steady pace does not keep open.
 */
const MAX_RATE_FACTOR = 2;

export type SlotResult = { polled: number } | { skipped: "late" | "off" | "replanned" };

export interface SlotOptions {
  signal?: AbortSignal;
  /** Daemons alive now, this one included (fleet/daemon-roster.ts). */
  daemons?: () => number;
}

/** A slot's job: the next slot's added, then this one swept. A job of an older plan restarts the chain at the current slot. */
export async function sweepSliceJob(ctx: FleetContext, job: SliceJob, options: SlotOptions = {}): Promise<SlotResult> {
  const plan = slicePlan(ctx.config);
  if (!plan) return { skipped: "off" };
  if (job.sliceMs !== plan.sliceMs) {
    await addSliceJob(ctx.queues, Math.floor(Date.now() / plan.sliceMs), plan.sliceMs);
    return { skipped: "replanned" };
  }
  await addSliceJob(ctx.queues, job.slot + 1, plan.sliceMs);
  return sweepSlot(ctx, job.slot * plan.sliceMs, options);
}

export async function sweepSlot(ctx: FleetContext, scheduledAtMs: number, { signal, daemons }: SlotOptions = {}): Promise<SlotResult> {
  const plan = slicePlan(ctx.config);
  if (!plan) return { skipped: "off" };
  const slot = slotAt(plan, scheduledAtMs);
  // The same slice of the next interval is due: it polls these instances, this slot does not.
  if (Date.now() >= slot.startMs + plan.intervalMs - plan.sliceMs) return { skipped: "late" };
  if (slot.slice === 0) await warnIfBudgetShort(ctx, plan);
  const [from, to] = phasesOf(plan, slot.slice);
  const { rows } = await ctx.sql.query<SweepTarget & { sweepPhase: number }>(SLOT_SQL, [
    from, to, new Date(Date.now() - plan.intervalMs * JUST_HEARD_SHARE), plan.hookedEvery, slot.cycle % plan.hookedEvery,
  ]);
  const sweep = new StateSweep(ctx, "sweep", signal);
  const tokens = await sweep.prepare(rows);
  const endMs = slot.startMs + plan.sliceMs;
  const minGapMs = plan.sliceMs / Math.max(rows.length, 1) / MAX_RATE_FACTOR;
  let earliest = Date.now();
  for (let i = 0; i < rows.length; i += 1) {
    const target = rows[i]!;
    const now = Date.now();
    const at = Math.max(Math.min(slot.cycleStartMs + (target.sweepPhase * plan.intervalMs) / PHASES, endMs), earliest);
    // Counted from when the poll really goes: a loop held up (a busy process) resumes at the cap, not in a burst.
    earliest = Math.max(at, now) + minGapMs;
    const wait = at - now;
    if (wait > TICK_MS) await sleep(wait, undefined, { signal }).catch(() => undefined);
    if (signal?.aborted) break;
    const lanesFull = sweep.poll(target, tokens[i]);
    if (lanesFull) await lanesFull;
  }
  void sweep.finish().catch((err: unknown) => ctx.log.error({ err, slice: slot.slice }, "recording a sweep slot's answers failed"));
  if ((daemons?.() ?? 1) > 1) await sleep(endMs + plan.sliceMs * HAND_OVER_SHARE - Date.now(), undefined, { signal }).catch(() => undefined);
  return { polled: rows.length };
}

const PER_HOST_SQL = `SELECT "apiUrl" AS host, count(*)::int AS n FROM "Instance" WHERE enabled GROUP BY 1`;

/** Once an interval: a provider host whose budget is below what its instances need is named in a warning. */
async function warnIfBudgetShort(ctx: FleetContext, plan: SlicePlan): Promise<void> {
  const budget = ctx.config.QRFLEET_PROVIDER_HOST_RPS;
  if (budget <= 0) return;
  const { rows } = await ctx.sql.query<{ host: string; n: number }>(PER_HOST_SQL);
  for (const { host, n } of rows) {
    const needed = Math.ceil((n * 1000) / plan.intervalMs);
    if (needed > budget) {
      ctx.log.warn(
        { host, instances: n, neededPerS: needed, budgetPerS: budget, thisDaemonPerS: Math.round(hostBudgetOf(ctx).rate) },
        `sweep: ${host} needs ${needed} state checks a second for ${n} instances, but QRFLEET_PROVIDER_HOST_RPS allows ${budget}: raise it, or lengthen QRFLEET_SWEEP_INTERVAL_MS`,
      );
    }
  }
}
