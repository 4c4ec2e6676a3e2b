import { setTimeout as sleep } from "node:timers/promises";
import type { Config } from "../../config.js";
import type { FleetContext } from "../context.js";
import { hostBudgetOf } from "../provider/host-budget.js";
import { SlotClaims } from "./slot-claims.js";
import { NOT_IN_SESSION, StateSweep, TARGET_COLUMNS, type SweepTarget } from "./state-sweep.js";

/**
 * The sweep every daemon shares. Each instance has a phase (`sweepPhase`, 0…65535): the point in
 * each interval where it is polled. The interval is cut into slices; a slot (one slice of one
 * interval) is claimed in Redis by one daemon (slot-claims.ts), a quarter of a slice before it
 * begins, so the slot's rows are read by the time its first instance is due. The work is shared
 * and the calls are spread evenly, and a slot is never swept twice. A daemon that finishes a slot
 * looks for the oldest slot of the last interval nobody holds: so no slot is skipped however late
 * a daemon is, and one held by a daemon that died is taken over once its lease runs out, and swept
 * late unless the next interval's slot of the same slice is already due.
 *
 * Each daemon sweeps one slot at a time, and while other daemons are alive it holds its slot a
 * little past the slot's end (HAND_OVER_SHARE of a slice), so the next slot falls to a daemon that
 * is free: the slots go round the daemons in turn rather than to whichever wakes first. A slot's
 * answers are recorded after its sweep ends, so a slow provider never makes the next slot wait.
 *
 * An instance whose provider webhook is trusted (a `hookState` that agrees with `lastState`) is polled
 * only every QRFLEET_SWEEP_INTERVAL_HOOKED_MS, in the intervals its phase picks, as a backstop.
 */

export const PHASES = 65_536;
/** A slice is never shorter than this: each daemon makes a Redis call per slot. */
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

/** The slot that holds the moment `atMs`. */
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

/** A slot is claimed this share of a slice before it begins. */
const LEAD_SHARE = 1 / 4;

/** While other daemons are alive, a slot's sweep ends this share of a slice after the slot does. */
const HAND_OVER_SHARE = 1 / 4;

/**
 * A slot's polls never go faster than this many times its average rate: instances whose turn has
 * passed (a slot taken late) or that fall close together are caught up over a few ticks, not sent
 * in one burst that would need connections the steady pace does not keep open.
 */
const MAX_RATE_FACTOR = 2;

export type SlotResult = { polled: number } | { skipped: "late" | "off" };

export interface SlotOptions {
  signal?: AbortSignal;
  /** Daemons alive now, this one included (fleet/provider/daemon-roster.ts). */
  daemons?: () => number;
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

/** A daemon's share of the sweep, from startSweepSlots. */
export interface SweepSlots {
  /** Claims no other slot, and lets the one being swept finish: after `haltAfterMs` it is stopped where it is. */
  stop(haltAfterMs: number): Promise<void>;
}

/** Claims and sweeps slots until stopped; null when QRFLEET_SWEEP_INTERVAL_MS is 0. `holder` names this daemon. */
export function startSweepSlots(ctx: FleetContext, holder: string, options: Pick<SlotOptions, "daemons"> = {}): SweepSlots | null {
  const plan = slicePlan(ctx.config);
  if (!plan) return null;
  const claims = new SlotClaims(ctx.queues.connection, ctx.queues.prefix, holder, plan);
  const idle = new AbortController();
  const halt = new AbortController();
  const running = claimAndSweep(ctx, plan, claims, { idle: idle.signal, halt: halt.signal, daemons: options.daemons });
  return {
    async stop(haltAfterMs) {
      idle.abort();
      const halting = setTimeout(() => halt.abort(), haltAfterMs);
      await running;
      clearTimeout(halting);
    },
  };
}

interface LoopSignals {
  /** Stops the wait between slots. */
  idle: AbortSignal;
  /** Stops the slot being swept. */
  halt: AbortSignal;
  daemons?: () => number;
}

/** Redis away stops the sweep (nobody can tell who holds a slot): said once a minute, not once a slot. */
const CLAIM_WARN_EVERY_MS = 60_000;

async function claimAndSweep(ctx: FleetContext, plan: SlicePlan, claims: SlotClaims, { idle, halt, daemons }: LoopSignals): Promise<void> {
  const leadMs = plan.sliceMs * LEAD_SHARE;
  let done: number | undefined;
  let warnedAt = 0;
  while (!idle.aborted) {
    const now = Date.now();
    const newest = Math.floor((now + leadMs) / plan.sliceMs);
    // Older slots would be skipped as late (sweepSlot): the same slice of the next interval is due.
    const oldest = Math.floor((now - plan.intervalMs + plan.sliceMs) / plan.sliceMs) + 1;
    let slot: number | null = null;
    try {
      slot = await claims.claim(oldest, newest, done);
      done = undefined;
    } catch (err) {
      if (now - warnedAt >= CLAIM_WARN_EVERY_MS) {
        warnedAt = now;
        ctx.log.warn({ err: (err as Error).message }, "sweep: Redis did not answer a slot claim; the sweep waits for it");
      }
    }
    if (slot === null) {
      await sleep((newest + 1) * plan.sliceMs - leadMs - Date.now(), undefined, { signal: idle }).catch(() => undefined);
      continue;
    }
    done = await sweepClaimed(ctx, claims, slot, slot * plan.sliceMs, { signal: halt, daemons });
  }
  if (done !== undefined) await claims.finish(done).catch(() => undefined);
}

/** Sweeps the claimed slot that begins at `startMs`, its lease renewed while it runs long; the slot, to be marked done. */
async function sweepClaimed(ctx: FleetContext, claims: SlotClaims, slot: number, startMs: number, options: SlotOptions): Promise<number> {
  const renewing = setInterval(() => void claims.renew(slot).catch(() => undefined), claims.leaseMs / 2);
  try {
    await sweepSlot(ctx, startMs, options);
  } catch (err) {
    ctx.log.error({ err, slot }, "sweep: a slot failed");
  } finally {
    clearInterval(renewing);
  }
  return slot;
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
