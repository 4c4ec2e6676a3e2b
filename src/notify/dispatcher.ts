import type { ChannelKind } from "../db.js";
import type { Logger } from "../log.js";
import { addNotifyJobs, notifyJobId, type Queues } from "../queues.js";
import type { ChannelHealth } from "./channel-health.js";
import type { ChannelCache, ChannelInfo } from "./channels.js";
import { Lane, type LaneItem } from "./lanes.js";
import type { DeliveryRecorder, TryRecord } from "./recorder.js";
import { afterTry, DEFAULT_RETRY_POLICY, type RetryPolicy } from "./schedule.js";
import { emailFor, sendWebhook, type SendDeps } from "./send.js";
import type { TryResult, EventView, QrView } from "./types.js";

/**
 * First tries, sent by the process that recorded the event, straight after the commit: no hop
 * through Redis and no reload from PostgreSQL. The Delivery row stays the truth: it was written
 * leased to this process, its result is recorded in a batch, and a retry goes to the notify queue.
 */

export type Freshness = { ok: true; qr: QrView | null } | { ok: false; reason: string };

export interface Outbound {
  deliveryId: string;
  channelId: string;
  view: EventView;
  /** Sends are ordered per key (the session) within a channel. */
  key: string;
  /** A queued QR update is replaced by a newer one of its key: only the newest is worth sending. */
  supersedes: boolean;
  /** Asked right before sending: is it still worth it to this kind of channel, and which QR it shows. */
  check(kind: ChannelKind): Freshness;
  /** After this (epoch ms) the lease on the row is over and the notify queue owns it. */
  leaseUntil: number;
  /** When the QR this announces was received (latency metrics), or null. */
  receivedAt: Date | null;
}

export interface DispatcherDeps {
  send: SendDeps;
  channels: ChannelCache;
  recorder: DeliveryRecorder;
  queues: Queues;
  log: Logger;
  retry?: Partial<RetryPolicy>;
  /** Told what each try came to: disables a channel that answers 410 or fails for too long. */
  health?: ChannelHealth;
  /** Told about every first try that reached a final status or a retry. */
  onResult?(r: { deliveryId: string; kind: ChannelInfo["kind"]; status: TryRecord["status"] | "retry"; receivedAt: Date | null }): void;
}

/**
 * Sends to one channel in flight at once: a receiver answering in 50 ms still takes 600 QR updates
 * a second; emails wait in nodemailer's pool for one of its SMTP connections.
 */
const IN_FLIGHT = { webhook: 32, email: 64 } as const;
export const SUPERSEDED = "expired: a newer QR superseded it before it was sent";

type Item = Outbound & LaneItem & { channel: ChannelInfo };

export class Dispatcher {
  private readonly lanes = new Map<string, Lane<Item>>();
  private readonly policy: RetryPolicy;
  private closed = false;

  constructor(private readonly deps: DispatcherDeps) {
    this.policy = { ...DEFAULT_RETRY_POLICY, ...deps.retry };
  }

  /** Queues first tries; never throws (a problem is logged and the row is left to the reconciler). */
  dispatch(items: readonly Outbound[]): void {
    if (items.length === 0) return;
    if (this.closed) return void this.release(items);
    this.deps.channels.get(items.map((i) => i.channelId)).then(
      (channels) => {
        for (const item of items) {
          const channel = channels.get(item.channelId);
          if (channel) this.lane(channel).push({ ...item, channel });
        }
      },
      (err: unknown) => this.deps.log.warn({ err }, "could not load channels: deliveries are left to the notify queue"),
    );
  }

  /** Sends what is in flight (bounded by the caller), and gives what waits back to the notify queue. */
  async close(): Promise<void> {
    this.closed = true;
    const waiting = [...this.lanes.values()].flatMap((lane) => lane.takeWaiting());
    await Promise.all([this.release(waiting), ...[...this.lanes.values()].map((lane) => lane.whenIdle())]);
    await this.deps.recorder.drain();
  }

  private lane(channel: ChannelInfo): Lane<Item> {
    let lane = this.lanes.get(channel.id);
    if (!lane) {
      lane = new Lane<Item>(IN_FLIGHT[channel.kind], (item) => this.send(item), (item) => void this.expire(item, SUPERSEDED));
      this.lanes.set(channel.id, lane);
    }
    return lane;
  }

  private async send(item: Item): Promise<void> {
    // A row whose lease ran out may already be in a retry's hands: it is theirs now.
    if (Date.now() > item.leaseUntil || this.closed) return void (await this.release([item]));
    const fresh = item.check(item.channel.kind);
    if (!fresh.ok) return this.expire(item, `expired: ${fresh.reason}`);
    // The cached copy disagrees with routing, which found the channel enabled when it wrote this row
    // (a channel enabled again), or is older than this process disabling it (a 410 a moment ago):
    // the notify queue reads the row and the channel afresh, and sends only if both still say so.
    if (!item.channel.enabled || this.deps.health?.disabledHere(item.channel.id)) {
      this.deps.channels.forget(item.channel.id);
      return void (await this.release([item]));
    }
    const now = new Date();
    if (item.channel.kind === "webhook") {
      const result = await sendWebhook(this.deps.send, item.channel, item.deliveryId, item.view, fresh.qr, now);
      return this.finishTry(item, result, fresh.qr?.validUntil ?? null);
    }
    if (!(await this.deps.recorder.handOff(item.deliveryId))) return;
    const result = await this.deps.send.mailer.send(emailFor(this.deps.send, item.channel, item.view, fresh.qr, now));
    return this.finishTry(item, result, null);
  }

  /** The delivery records its own answer first; then a 410 or a long failure may disable the channel. */
  private async finishTry(item: Item, result: TryResult, validUntil: Date | null): Promise<void> {
    await this.finish(item, result, validUntil);
    await this.deps.health?.afterTry(item.channel, result);
  }

  private async finish(item: Item, result: TryResult, validUntil: Date | null): Promise<void> {
    const now = new Date();
    const verdict = afterTry(item.view.type, 1, result, validUntil, this.policy, now);
    const response = { responseStatus: result.status, responseBody: result.body };
    const record: TryRecord =
      verdict.status === "sent"
        ? { id: item.deliveryId, status: "sent", tried: 1, lastError: null, ...response, nextAt: null }
        : verdict.status === "retry"
          ? { id: item.deliveryId, status: "pending", tried: 1, lastError: verdict.error, ...response, nextAt: new Date(now.getTime() + verdict.delayMs) }
          : { id: item.deliveryId, status: verdict.status, tried: 1, lastError: verdict.error, ...response, nextAt: null };
    const recorded = await this.deps.recorder.record(record).catch((err: unknown) => {
      this.deps.log.warn({ err, deliveryId: item.deliveryId }, "could not record a delivery's result; the reconciler will pick it up");
      return false;
    });
    this.deps.onResult?.({ deliveryId: item.deliveryId, kind: item.channel.kind, status: verdict.status, receivedAt: item.receivedAt });
    if (verdict.status === "sent") {
      this.deps.log.debug({ deliveryId: item.deliveryId, type: item.view.type, kind: item.channel.kind, responseStatus: result.status }, "delivery sent");
    } else {
      const line = { deliveryId: item.deliveryId, type: item.view.type, kind: item.channel.kind, status: verdict.status, err: verdict.error };
      this.deps.log.info(line, verdict.status === "retry" ? "delivery will be retried" : `delivery ${verdict.status}`);
    }
    if (recorded && verdict.status === "retry") {
      await this.deps.queues.notify
        .add("deliver", { deliveryId: item.deliveryId }, { jobId: notifyJobId(item.deliveryId), delay: verdict.delayMs })
        .catch((err: unknown) => this.deps.log.warn({ err, deliveryId: item.deliveryId }, "retry not queued yet; the reconciler will"));
    }
  }

  private async expire(item: Item, reason: string): Promise<void> {
    const record: TryRecord = { id: item.deliveryId, status: "expired", tried: 0, lastError: reason, responseStatus: null, responseBody: null, nextAt: null };
    await this.deps.recorder.record(record).catch(() => false);
    this.deps.onResult?.({ deliveryId: item.deliveryId, kind: item.channel.kind, status: "expired", receivedAt: item.receivedAt });
  }

  private async release(items: readonly Outbound[]): Promise<void> {
    if (items.length === 0) return;
    try {
      const due = await this.deps.recorder.release(items.map((i) => i.deliveryId));
      await addNotifyJobs(this.deps.queues, due);
    } catch (err) {
      this.deps.log.warn({ err, deliveries: items.length }, "could not hand deliveries to the notify queue; the reconciler will");
    }
  }
}
