import { summarize, type LatencySummary } from "./percentiles.js";

/**
 * The logouts of a watch phase: `count` instances spread evenly over the fleet's ids, logged out
 * one after the other, evenly over `spreadMs`, by one chained timer. Each logout's time is kept,
 * to be compared with when that instance's first QR reached the operators' receiver.
 */

export interface LogoutResult {
  /** Logouts asked for, and done before the end of the window. */
  planned: number;
  done: number;
  /** ms from each logout to the first `qr.updated` of its instance at the receiver. */
  toFirstQrMs: LatencySummary;
  /** Done, but no QR of that instance reached the receiver by the end of the drain. */
  lost: number;
}

export class LogoutPlan {
  /** The instance index of each logout, in order. */
  private readonly targets: Int32Array;
  private readonly at: Float64Array;
  private done = 0;
  private timer: NodeJS.Timeout | null = null;

  constructor(fleetSize: number, count: number) {
    if (count > fleetSize) throw new Error(`cannot log out ${count} of ${fleetSize} instances`);
    this.targets = Int32Array.from({ length: count }, (_, k) => Math.floor((k * fleetSize) / count));
    this.at = new Float64Array(count).fill(NaN);
  }

  /** Logs out the k-th target at start + k × spreadMs / count. */
  start(spreadMs: number, logout: (index: number) => void, start = Date.now()): void {
    const step = () => {
      this.timer = null;
      const count = this.targets.length;
      while (this.done < count && Date.now() >= start + (this.done * spreadMs) / count) {
        this.at[this.done] = Date.now();
        logout(this.targets[this.done]!);
        this.done += 1;
      }
      if (this.done < count) this.timer = setTimeout(step, Math.max(0, start + (this.done * spreadMs) / count - Date.now()));
    };
    step();
  }

  /** No logout after this. */
  cancel(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  /** `firstQrAt(index)`: when that instance's first QR reached the receiver, NaN if never. */
  result(firstQrAt: (index: number) => number): LogoutResult {
    const latencies: number[] = [];
    let lost = 0;
    for (let k = 0; k < this.done; k += 1) {
      const qrAt = firstQrAt(this.targets[k]!);
      if (qrAt >= this.at[k]!) latencies.push(qrAt - this.at[k]!);
      else lost += 1;
    }
    return { planned: this.targets.length, done: this.done, toFirstQrMs: summarize(latencies), lost };
  }
}
