import { maskSecrets } from "../log.js";
import type { TryResult, EventType } from "./types.js";

/**
 * When a failed delivery is tried again. Entry i is the wait before try i+1, so the first
 * entry (0) is the immediate first try and the length is the number of tries.
 */

const S = 1000;
const MIN = 60 * S;
const H = 60 * MIN;

/** Outcomes matter for hours (someone must act): Svix's schedule, 8 tries over about a day. */
export const OUTCOME_SCHEDULE_MS: readonly number[] = [0, 5 * S, 5 * MIN, 30 * MIN, 2 * H, 5 * H, 10 * H, 10 * H];

/** A QR is worth something for seconds: try quickly, and give up when it rotates (validity decides first). */
export const QR_SCHEDULE_MS: readonly number[] = [0, 1 * S, 2 * S, 4 * S, 8 * S, 16 * S];

export interface RetryPolicy {
  outcome: readonly number[];
  qr: readonly number[];
  /** Scales every wait; tests use e.g. 0.001 to run a day-long schedule in milliseconds. */
  multiplier: number;
  /** The longest wait a receiver's Retry-After can ask for, in ms (not scaled). */
  retryAfterMaxMs: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = Object.freeze({
  outcome: OUTCOME_SCHEDULE_MS,
  qr: QR_SCHEDULE_MS,
  multiplier: 1,
  retryAfterMaxMs: H,
});

export function scheduleFor(type: EventType, policy: RetryPolicy = DEFAULT_RETRY_POLICY): readonly number[] {
  return type === "qr.updated" ? policy.qr : policy.outcome;
}

/** Wait before the next try after `triesMade` tries, or null when the schedule is used up. */
export function nextRetryDelayMs(type: EventType, triesMade: number, policy: RetryPolicy = DEFAULT_RETRY_POLICY): number | null {
  const delay = scheduleFor(type, policy)[triesMade];
  return delay === undefined ? null : Math.round(delay * policy.multiplier);
}

export type TryVerdict =
  | { status: "sent" }
  | { status: "failed" | "expired"; error: string }
  | { status: "retry"; delayMs: number; error: string };

/**
 * What a delivery comes to after `triesMade` tries, the last of which came to `result`: a QR
 * update whose next try would come after its QR stopped being valid is `expired`, not retried.
 */
export function afterTry(
  type: EventType,
  triesMade: number,
  result: TryResult,
  validUntil: Date | null,
  policy: RetryPolicy,
  now: Date,
): TryVerdict {
  if (result.kind === "sent") return { status: "sent" };
  const error = maskSecrets(result.error).slice(0, 1000);
  const scheduled = result.kind === "retryable" ? nextRetryDelayMs(type, triesMade, policy) : null;
  if (scheduled === null) return { status: "failed", error };
  // The receiver knows when it can take more: its Retry-After replaces the schedule's wait, bounded.
  const delayMs = result.retryAfterMs === undefined ? scheduled : Math.min(result.retryAfterMs, policy.retryAfterMaxMs);
  if (type === "qr.updated" && validUntil && now.getTime() + delayMs >= validUntil.getTime()) return { status: "expired", error };
  return { status: "retry", delayMs, error };
}
