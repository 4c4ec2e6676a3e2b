import { summarize, type LatencySummary } from "./percentiles.js";

/**
 * Every getStateInstance answer of a watch phase, as the simulator sent it: how many, and for each
 * instance the longest it went unchecked while it was linked. Typed arrays indexed like the
 * phase's instance list, so 100,000 instances cost a few megabytes.
 *
 * A gap counts when it ends inside the measured window (it may have started before it); the
 * window's end, or an instance's logout, ends its last gap. A logged-out instance is no longer
 * tracked: its QR session, not the sweep, watches it from then on.
 */

export interface PollResult {
  /** Answers over the whole phase, and inside the measured window. */
  answers: number;
  windowAnswers: number;
  windowMs: number;
  pollsPerSec: number | null;
  /** Over instances: each one's longest time without an answer, ms. */
  uncheckedMs: LatencySummary;
  /** Instances linked through the whole window that got no answer inside it. */
  unpolled: number;
  /** Instances that got no answer at all in the phase (logged-out ones included). */
  neverPolled: number;
}

export class PollLedger {
  private readonly last: Float64Array;
  private readonly longest: Float64Array;
  private readonly stoppedAt: Float64Array;
  private readonly polledInWindow: Uint8Array;
  private readonly polledEver: Uint8Array;
  private windowStart = Infinity;
  private windowEnd = Infinity;
  answers = 0;
  windowAnswers = 0;

  /** `since`: until begin() says when the measured processes started. */
  constructor(size: number, since: number) {
    this.last = new Float64Array(size).fill(since);
    this.longest = new Float64Array(size);
    this.stoppedAt = new Float64Array(size).fill(Infinity);
    this.polledInWindow = new Uint8Array(size);
    this.polledEver = new Uint8Array(size);
  }

  /** The measured processes started at `at`: an instance not answered yet has been unchecked since then. */
  begin(at: number): void {
    for (let i = 0; i < this.last.length; i += 1) if (!this.polledEver[i]) this.last[i] = at;
  }

  answered(index: number, at: number): void {
    this.answers += 1;
    this.polledEver[index] = 1;
    if (at > this.windowEnd || at >= this.stoppedAt[index]!) return;
    if (at >= this.windowStart) {
      this.windowAnswers += 1;
      this.polledInWindow[index] = 1;
      this.longest[index] = Math.max(this.longest[index]!, at - this.last[index]!);
    }
    this.last[index] = at;
  }

  /** The instance was logged out at `at`: its last gap ends there. */
  stop(index: number, at: number): void {
    this.stoppedAt[index] = Math.min(this.stoppedAt[index]!, at);
  }

  startWindow(at: number): void {
    this.windowStart = at;
  }

  /** The end of the measured window; later answers are not counted. */
  close(at: number): void {
    this.windowEnd = Math.min(this.windowEnd, at);
  }

  result(now = Date.now()): PollResult {
    const end = Math.min(this.windowEnd, now);
    const windowMs = Number.isFinite(this.windowStart) ? Math.max(0, end - this.windowStart) : 0;
    const gaps: number[] = [];
    let unpolled = 0;
    let neverPolled = 0;
    for (let i = 0; i < this.last.length; i += 1) {
      if (!this.polledEver[i]) neverPolled += 1;
      const stop = Math.min(end, this.stoppedAt[i]!);
      if (stop < this.windowStart) continue;
      gaps.push(Math.max(this.longest[i]!, stop - this.last[i]!));
      if (this.stoppedAt[i] === Infinity && !this.polledInWindow[i]) unpolled += 1;
    }
    return {
      answers: this.answers,
      windowAnswers: this.windowAnswers,
      windowMs,
      pollsPerSec: windowMs > 0 ? Math.round((this.windowAnswers / windowMs) * 10_000) / 10 : null,
      uncheckedMs: summarize(gaps),
      unpolled,
      neverPolled,
    };
  }
}
