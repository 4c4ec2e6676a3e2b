/**
 * What the intake bench's provider says, webhook by webhook: a storm as GREEN-API delivers one.
 * Most calls repeat what an instance already is (a new report, or a retry of the last event with
 * its own timestamp), a few change it (linked ↔ logged out), and a few are late: an older event
 * of the other state that arrives after a newer one and must change nothing.
 *
 * Provider timestamps have whole seconds, so an instance changes state at most once a second here
 * (never twice within one second): the newest event of every instance is then well defined, and
 * `expected()` is what the fleet must have recorded once every call has been answered.
 */

export type HookState = "authorized" | "notAuthorized";
export type HookKind = "repeat" | "retry" | "change" | "late";

export interface HookCall {
  /** Index of the instance in the list the mix was made for. */
  index: number;
  state: HookState;
  /** Unix seconds, as the provider sends them. */
  timestamp: number;
  kind: HookKind;
}

/** Shares of the calls, in this order of choice; the rest are repeats of the current state. */
export const MIX = { change: 0.04, late: 0.04, retry: 0.2 } as const;
/** A late event is this many seconds older than the newest one at most. */
export const LATE_BY_MAX_S = 30;

const other = (s: HookState): HookState => (s === "authorized" ? "notAuthorized" : "authorized");

export class IntakeMix {
  private readonly state: Array<HookState | null>;
  private readonly newest: number[];
  readonly counts: Record<HookKind, number> = { repeat: 0, retry: 0, change: 0, late: 0 };

  constructor(
    instances: number,
    private readonly random: () => number = Math.random,
  ) {
    this.state = new Array<HookState | null>(instances).fill(null);
    this.newest = new Array<number>(instances).fill(0);
  }

  /** The next call, at `nowS` (Unix seconds). */
  next(nowS: number): HookCall {
    const index = Math.floor(this.random() * this.state.length);
    const call = this.choose(index, nowS, this.random());
    this.counts[call.kind] += 1;
    return call;
  }

  /** The newest state sent for each instance (null: none was). */
  expected(): ReadonlyArray<HookState | null> {
    return this.state;
  }

  private choose(index: number, nowS: number, roll: number): HookCall {
    const current = this.state[index];
    if (current === null || current === undefined) return this.report(index, "authorized", nowS, "repeat");
    const newest = this.newest[index]!;
    if (roll < MIX.change && nowS > newest) return this.report(index, other(current), nowS, "change");
    if (roll >= MIX.change && roll < MIX.change + MIX.late && newest > LATE_BY_MAX_S) {
      const by = 1 + Math.floor(this.random() * LATE_BY_MAX_S);
      return { index, state: other(current), timestamp: newest - by, kind: "late" };
    }
    if (roll >= MIX.change + MIX.late && roll < MIX.change + MIX.late + MIX.retry) {
      return { index, state: current, timestamp: newest, kind: "retry" };
    }
    return this.report(index, current, nowS, "repeat");
  }

  private report(index: number, state: HookState, nowS: number, kind: HookKind): HookCall {
    this.state[index] = state;
    this.newest[index] = Math.max(this.newest[index]!, nowS);
    return { index, state, timestamp: nowS, kind };
  }
}
