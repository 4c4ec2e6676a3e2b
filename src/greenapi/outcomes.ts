import { maskSecrets } from "../log.js";
import type { QrFrame } from "./frames.js";
import type { FailureReason, AttemptNotice, AttemptOutcome } from "./types.js";

/** Pieces both QR transports (websocket and REST polling) build their single outcome from. */

export function failed(reason: FailureReason, message: string): AttemptOutcome {
  return { kind: "failed", reason, message };
}

/** The ending a terminal frame of the websocket means. */
export function outcomeOfFrame(frame: Exclude<QrFrame, { type: "qrCode" } | { type: "unknown" }>): AttemptOutcome {
  switch (frame.type) {
    case "accountData":
      return { kind: "authorized", accountData: frame.raw, phone: frame.phone };
    case "alreadyLogged":
      return { kind: "already_logged" };
    case "timeout":
      return { kind: "timed_out" };
    case "error":
      return failed("provider_error", `provider error frame: ${maskSecrets(frame.message)}`);
    case "protocolError":
      return failed("protocol_error", frame.reason);
  }
}

export function errorText(err: unknown): string {
  return maskSecrets(err instanceof Error ? err.message : String(err)).slice(0, 500);
}

export function abortReason(signal: AbortSignal | undefined): string {
  const r: unknown = signal?.reason;
  if (r instanceof Error) return maskSecrets(r.message) || r.name;
  return typeof r === "string" && r !== "" ? maskSecrets(r) : "aborted";
}

/** Reports a notice; an observer's bug must not change the attempt's outcome. */
export function emitNotice(onNotice: ((n: AttemptNotice) => void) | undefined, notice: AttemptNotice): void {
  try {
    onNotice?.(notice);
  } catch {
    // swallowed on purpose: see above
  }
}

const MAX_TIMER_MS = 2 ** 31 - 1;

/** The first bound that is not a positive number of ms a timer can hold, as a RangeError; else null. */
export function badBound(bounds: Record<string, number>): RangeError | null {
  for (const [key, v] of Object.entries(bounds)) {
    if (!Number.isFinite(v) || v <= 0 || v > MAX_TIMER_MS) {
      return new RangeError(`${key} must be a positive number of ms up to ${MAX_TIMER_MS}`);
    }
  }
  return null;
}

/**
 * An attempt's promise, settled once: the first ending wins and releases everything the attempt
 * holds; later endings (a timer racing a frame, an abort after a close) are ignored.
 */
export abstract class SingleOutcome {
  protected done = false;
  private resolve!: (outcome: AttemptOutcome) => void;
  private reject!: (err: unknown) => void;
  private signal: AbortSignal | undefined;
  private readonly onAbort = () => this.finish({ kind: "cancelled", reason: abortReason(this.signal) });

  /**
   * The promise the caller waits on, which `signal` ends `cancelled` (at once if it is already
   * aborted: check `done` before starting anything). Call once, before anything can end the attempt.
   */
  protected outcome(signal: AbortSignal | undefined): Promise<AttemptOutcome> {
    const promise = new Promise<AttemptOutcome>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
    this.signal = signal;
    if (signal?.aborted) this.onAbort();
    else signal?.addEventListener("abort", this.onAbort, { once: true });
    return promise;
  }

  finish(outcome: AttemptOutcome): void {
    if (this.end()) this.resolve(outcome);
  }

  protected fail(err: unknown): void {
    if (this.end()) this.reject(err);
  }

  private end(): boolean {
    if (this.done) return false;
    this.done = true;
    this.signal?.removeEventListener("abort", this.onAbort);
    this.release();
    return true;
  }

  /** Clears timers and listeners and closes what the attempt opened; runs once, at the end. */
  protected abstract release(): void;
}
