/**
 * A channel's queue of sends. Items of one key (a session) go out one at a time and in order, so a
 * session's QR updates and its outcome reach a receiver in the order they happened; different keys
 * go out side by side, up to `limit` at once. A superseding item (a session's newer QR) replaces
 * the same key's superseding items still waiting, which are handed to `dropped`.
 */

export interface LaneItem {
  key: string;
  supersedes: boolean;
}

interface Slot<T> {
  items: T[];
  /** An item of this slot is being sent. */
  busy: boolean;
  /** The slot is in `ready`. */
  queued: boolean;
}

export class Lane<T extends LaneItem> {
  private readonly slots = new Map<string, Slot<T>>();
  private readonly ready: Array<Slot<T>> = [];
  private inFlight = 0;
  private idle: Array<() => void> = [];

  constructor(
    private readonly limit: number,
    private readonly send: (item: T) => Promise<void>,
    private readonly dropped: (item: T) => void,
  ) {}

  get size(): number {
    let n = this.inFlight;
    for (const slot of this.slots.values()) n += slot.items.length;
    return n;
  }

  push(item: T): void {
    let slot = this.slots.get(item.key);
    if (!slot) {
      slot = { items: [], busy: false, queued: false };
      this.slots.set(item.key, slot);
    }
    if (item.supersedes && slot.items.length > 0) {
      const kept = slot.items.filter((queued) => !queued.supersedes);
      for (const queued of slot.items) if (queued.supersedes) this.dropped(queued);
      slot.items = kept;
    }
    slot.items.push(item);
    this.enqueue(slot);
    this.pump();
  }

  /** Removes every item not yet started and returns them. */
  takeWaiting(): T[] {
    const waiting: T[] = [];
    for (const [key, slot] of this.slots) {
      waiting.push(...slot.items.splice(0));
      slot.queued = false;
      if (!slot.busy) this.slots.delete(key);
    }
    this.ready.length = 0;
    return waiting;
  }

  /** Resolves when nothing is in flight. */
  whenIdle(): Promise<void> {
    if (this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.idle.push(resolve));
  }

  private enqueue(slot: Slot<T>): void {
    if (slot.busy || slot.queued || slot.items.length === 0) return;
    slot.queued = true;
    this.ready.push(slot);
  }

  private pump(): void {
    while (this.inFlight < this.limit && this.ready.length > 0) {
      const slot = this.ready.shift()!;
      slot.queued = false;
      const item = slot.items.shift();
      if (!item) continue;
      slot.busy = true;
      this.inFlight += 1;
      this.send(item)
        .catch(() => undefined)
        .finally(() => this.done(item.key, slot));
    }
  }

  private done(key: string, slot: Slot<T>): void {
    this.inFlight -= 1;
    slot.busy = false;
    if (slot.items.length > 0) this.enqueue(slot);
    else if (this.slots.get(key) === slot) this.slots.delete(key);
    if (this.inFlight === 0) {
      const idle = this.idle;
      this.idle = [];
      for (const resolve of idle) resolve();
    }
    this.pump();
  }
}
