import type { ChannelKind } from "../db.js";
import type { ChannelHealth } from "./channel-health.js";
import type { ChannelInfo } from "./channels.js";
import { CHANNEL_KINDS, type Freshness, type QrCandidates } from "./kinds/index.js";
import type { DeliveryRecorder, TryRecord } from "./recorder.js";
import { afterTry, type RetryPolicy } from "./schedule.js";
import type { SendDeps } from "./send.js";
import type { DeliveryView, EventType, TryResult } from "./types.js";

/**
 * One try of one delivery, the only one there is: the first try straight after the commit
 * (dispatcher.ts) and every retry from the notify queue (deliver.ts) both come here once they hold
 * the row. It checks the delivery is still worth sending, sends it through its kind of channel
 * (notify/kinds), and records what it came to through the recorder, which writes many per statement.
 */

export interface TryDeps {
  send: SendDeps;
  recorder: DeliveryRecorder;
  policy: RetryPolicy;
  /** Told what each try came to: disables a channel that answers 410 or fails for too long. */
  health?: ChannelHealth;
  /** Told what every try (or expiry unsent) came to: metrics and the log (fleet/observe/observe.ts). */
  onResult?(r: DeliveryReport): void;
}

export interface DeliveryReport {
  deliveryId: string;
  kind: ChannelKind;
  type: EventType;
  status: "sent" | "failed" | "expired" | "retry";
  /** Tries made so far, this one included (0: expired unsent). */
  tries: number;
  error: string | null;
  /** When the QR a first try announces was received (latency metrics), or null. */
  receivedAt: Date | null;
}

/** A delivery this process holds, ready for a try. */
export interface DeliveryTry {
  deliveryId: string;
  channel: ChannelInfo;
  view: DeliveryView;
  /** Tries made before this one. */
  tries: number;
  /** For a `qr.updated`: the images it may show, asked right before sending. */
  qrs?(): QrCandidates | Promise<QrCandidates>;
  receivedAt: Date | null;
}

/** What a try came to; `noop`: nothing was sent (another run holds the email's hand-off). */
export type TryOutcome =
  | { status: "sent" | "failed" | "expired" | "noop" }
  /** `recorded`: the row took the result, so whoever runs the notify queue tries it again. */
  | { status: "retry"; retryInMs: number; recorded: boolean };

const NO_QR: Freshness = { ok: true, qr: null };

export async function tryDelivery(deps: TryDeps, t: DeliveryTry, now: Date = new Date()): Promise<TryOutcome> {
  const kind = CHANNEL_KINDS[t.channel.kind];
  const fresh = t.view.type === "qr.updated" && t.qrs ? kind.fresh(await t.qrs()) : NO_QR;
  if (!fresh.ok) return expireDelivery(deps, t, `expired: ${fresh.reason}`);
  if (!kind.repeatable && !(await deps.recorder.handOff(t.deliveryId))) return { status: "noop" };
  const result = await kind.send(deps.send, t.channel, t.deliveryId, t.view, fresh.qr, now);
  try {
    return await recordTry(deps, t, result, fresh.qr?.validUntil ?? null, now);
  } finally {
    // The delivery records its own answer first; then a 410 or a long failure may disable the channel.
    await deps.health?.afterTry(t.channel, result);
  }
}

/** Records what a try came to (or a refusal decided without sending, as a try): sent, failed, expired or to be retried. */
export async function recordTry(deps: TryDeps, t: DeliveryTry, result: TryResult, validUntil: Date | null, now: Date): Promise<TryOutcome> {
  const tries = t.tries + 1;
  const verdict = afterTry(t.view.type, tries, result, validUntil, deps.policy, now);
  const common = { id: t.deliveryId, tried: 1, responseStatus: result.status, responseBody: result.body } as const;
  const record: TryRecord =
    verdict.status === "sent"
      ? { ...common, status: "sent", lastError: null, nextAt: null }
      : verdict.status === "retry"
        ? { ...common, status: "pending", lastError: verdict.error, nextAt: new Date(now.getTime() + verdict.delayMs) }
        : { ...common, status: verdict.status, lastError: verdict.error, nextAt: null };
  const recorded = await deps.recorder.record(record);
  report(deps, t, verdict.status, tries, verdict.status === "sent" ? null : verdict.error);
  return verdict.status === "retry" ? { status: "retry", retryInMs: verdict.delayMs, recorded } : { status: verdict.status };
}

/** Records a delivery as expired unsent: `reason` says why it was no longer worth sending. */
export async function expireDelivery(deps: TryDeps, t: DeliveryTry, reason: string): Promise<TryOutcome> {
  const record: TryRecord = { id: t.deliveryId, status: "expired", tried: 0, lastError: reason, responseStatus: null, responseBody: null, nextAt: null };
  await deps.recorder.record(record);
  report(deps, t, "expired", t.tries, reason);
  return { status: "expired" };
}

function report(deps: TryDeps, t: DeliveryTry, status: DeliveryReport["status"], tries: number, error: string | null): void {
  deps.onResult?.({ deliveryId: t.deliveryId, kind: t.channel.kind, type: t.view.type, status, tries, error, receivedAt: t.receivedAt });
}
