import type { ChannelInfo } from "../channels.js";
import type { SendDeps } from "../send.js";
import type { DeliveryView, EventType, QrView, TryResult } from "../types.js";

/** What a kind is asked of an event before a delivery is written for it. */
export interface WantsInput {
  type: EventType;
  /** qr.updated: the attempt's first image. */
  firstOfAttempt?: boolean;
  /** session.timed_out and session.failed: no attempt follows. */
  final?: boolean;
  /** The channel is in digest mode: one line in a list costs the reader little, so a kind may want more. */
  digest?: boolean;
}

/** The QR images a `qr.updated` delivery may show, as known right before it is sent. */
export interface QrCandidates {
  /** The attempt the event belongs to is still running. */
  open: boolean;
  /** The image the event announced; null when it is gone. */
  announced: QrView | null;
  /** The attempt's newest image; null when there is none. */
  latest: QrView | null;
}

/** Whether a delivery is still worth sending, and which QR it shows. */
export type Freshness = { ok: true; qr: QrView | null } | { ok: false; reason: string };

/**
 * What a kind of channel is to the outbox: how it sends, how many of its sends run at once, whether
 * a try that may have gone out can be repeated, and which QR it shows. A kind is one module in
 * this folder, registered in `index.ts`.
 */
export interface ChannelKindSender {
  /** First tries in flight at once to one channel of this kind. */
  readonly inFlight: number;
  /**
   * False: a try that may have reached the person is never made again (email: SMTP cannot be asked
   * whether it got a message). Such a try is recorded as handed off before it is sent, and one
   * interrupted in between is failed, not repeated. True: a repeat is harmless (a webhook carries
   * the same webhook-id, which receivers deduplicate).
   */
  readonly repeatable: boolean;
  /** Whether failing for QRFLEET_CHANNEL_DISABLE_AFTER_MS disables the channel (channel-health.ts): its endpoint is the operator's. */
  readonly disabledForFailing: boolean;
  /**
   * Whether a fleet-wide operator's channel of this kind is in digest mode until an admin says
   * otherwise (notify/routing.ts): true for a kind a person reads, who would get one message per
   * instance of the whole fleet.
   */
  readonly digestFleetWide: boolean;
  /** Whether a channel of this kind hears of the event at all. */
  wants(event: WantsInput): boolean;
  /** For a `qr.updated`: still worth sending, and with which image. */
  fresh(qrs: QrCandidates): Freshness;
  /** One try, of one event or of a digest; never throws for a delivery problem, it says what it came to. */
  send(deps: SendDeps, channel: ChannelInfo, deliveryId: string, view: DeliveryView, qr: QrView | null, now: Date): Promise<TryResult>;
}

export const ATTEMPT_ENDED: Freshness = { ok: false, reason: "its session attempt has ended" };
