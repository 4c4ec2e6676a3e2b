import type { Logger } from "../log.js";
import { addNotifyJobs, notifyJobId, type Queues } from "../queues.js";
import type { ChannelCache, ChannelInfo } from "./channels.js";
import { expireDelivery, tryDelivery, type DeliveryTry, type TryDeps } from "./delivery-try.js";
import { CHANNEL_KINDS } from "./kinds/index.js";
import { Lane, type LaneItem } from "./lanes.js";

/**
 * First tries, sent by the process that recorded the event, straight after the commit: no hop
 * through Redis and no reload from PostgreSQL. The Delivery row stays the truth: it was written
 * leased to this process, its result is recorded in a batch, and a retry goes to the notify queue.
 * The try itself is delivery-try.ts's, as for every retry.
 */

export interface Outbound extends Omit<DeliveryTry, "channel" | "tries"> {
  channelId: string;
  /** Sends are ordered per key (the session) within a channel. */
  key: string;
  /** A queued QR update is replaced by a newer one of its key: only the newest is worth sending. */
  supersedes: boolean;
  /** After this (epoch ms) the lease on the row is over and the notify queue owns it. */
  leaseUntil: number;
}

export interface DispatcherDeps {
  tries: TryDeps;
  channels: ChannelCache;
  queues: Queues;
  log: Logger;
}

export const SUPERSEDED = "expired: a newer QR superseded it before it was sent";

type Item = Outbound & LaneItem & { channel: ChannelInfo; tries: 0 };

export class Dispatcher {
  private readonly lanes = new Map<string, Lane<Item>>();
  private closed = false;

  constructor(private readonly deps: DispatcherDeps) {}

  /** Queues first tries; never throws (a problem is logged and the row is left to the reconciler). */
  dispatch(items: readonly Outbound[]): void {
    if (items.length === 0) return;
    if (this.closed) return void this.release(items);
    this.deps.channels.get(items.map((i) => i.channelId)).then(
      (channels) => {
        for (const item of items) {
          const channel = channels.get(item.channelId);
          if (channel) this.lane(channel).push({ ...item, channel, tries: 0 });
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
    await this.deps.tries.recorder.drain();
  }

  private lane(channel: ChannelInfo): Lane<Item> {
    let lane = this.lanes.get(channel.id);
    if (!lane) {
      lane = new Lane<Item>(CHANNEL_KINDS[channel.kind].inFlight, (item) => this.send(item), (item) => void this.settle(item, expireDelivery(this.deps.tries, item, SUPERSEDED)));
      this.lanes.set(channel.id, lane);
    }
    return lane;
  }

  private async send(item: Item): Promise<void> {
    // A row whose lease ran out may already be in a retry's hands: it is theirs now.
    if (Date.now() > item.leaseUntil || this.closed) return void (await this.release([item]));
    // The cached copy disagrees with routing, which found the channel enabled when it wrote this row
    // (a channel enabled again), or is older than this process disabling it (a 410 a moment ago):
    // the notify queue reads the row and the channel afresh, and sends only if both still say so.
    if (!item.channel.enabled || this.deps.tries.health?.disabledHere(item.channel.id)) {
      this.deps.channels.forget(item.channel.id);
      return void (await this.release([item]));
    }
    const outcome = await this.settle(item, tryDelivery(this.deps.tries, item));
    if (outcome?.status === "retry" && outcome.recorded) {
      await this.deps.queues.notify
        .add("deliver", { deliveryId: item.deliveryId }, { jobId: notifyJobId(item.deliveryId), delay: outcome.retryInMs })
        .catch((err: unknown) => this.deps.log.warn({ err, deliveryId: item.deliveryId }, "retry not queued yet; the reconciler will"));
    }
  }

  /** A try whose result could not be recorded stays pending under this process's lease: the reconciler hands it on. */
  private settle<T>(item: Item, recording: Promise<T>): Promise<T | undefined> {
    return recording.catch((err: unknown) => {
      this.deps.log.warn({ err, deliveryId: item.deliveryId }, "could not record a delivery's result; the reconciler will pick it up");
      return undefined;
    });
  }

  private async release(items: readonly Outbound[]): Promise<void> {
    if (items.length === 0) return;
    try {
      const due = await this.deps.tries.recorder.release(items.map((i) => i.deliveryId));
      await addNotifyJobs(this.deps.queues, due);
    } catch (err) {
      this.deps.log.warn({ err, deliveries: items.length }, "could not hand deliveries to the notify queue; the reconciler will");
    }
  }
}
