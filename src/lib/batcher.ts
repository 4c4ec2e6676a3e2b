import { writePersistently } from "./persistent-write.js";

/**
 * Turns many small writes into few statements. Items pushed while a batch is in flight wait for
 * the next one, so a batch grows with the load by itself: one item when the system is idle,
 * hundreds when it is busy, and one statement either way. By default at most one batch is in
 * flight, which keeps the order of items and leaves the rest of the connection pool to everything
 * else; `concurrency` allows more, for writes whose order the statement itself settles.
 */

export interface BatcherOptions<I, O> {
  /** Writes one batch; resolves one result per item, in the items' order. */
  run(items: I[]): Promise<O[]>;
  /** Largest batch. Default: 500 */
  maxBatch?: number;
  /**
   * Batches in flight at once. Above 1, a batch whose statement is slow (a lock, a busy server)
   * holds up only its own items, and items may be written out of order. Default: 1
   */
  concurrency?: number;
  /** Tries of one batch before its items are rejected; a statement can fail on a dropped connection. Default: 3 */
  tries?: number;
  /** Wait before the second try, doubled for each later one, in ms. Default: 200 */
  retryDelayMs?: number;
  /**
   * Keep trying a failed batch until this long after its first try, even past `tries`: for
   * writes whose loss costs more than their delay (a restart of PostgreSQL takes seconds). Default: 0
   */
  retryForMs?: number;
  /** Longest wait between two tries, in ms. Default: 2000 */
  maxRetryDelayMs?: number;
  /** Queued items above which `congested` is true. Default: Infinity */
  highWater?: number;
  /** `room()` resolves once queued items are at or below this. Default: highWater / 2 */
  lowWater?: number;
  /** Told about a failed try (the batch is tried again unless it was the last). */
  onError?(err: unknown, items: number, willRetry: boolean): void;
}

interface Queued<I, O> {
  item: I;
  resolve(result: O): void;
  reject(err: unknown): void;
}

export class Batcher<I, O> {
  private queue: Array<Queued<I, O>> = [];
  private readonly lanes = new Set<Promise<void>>();
  /** Lanes not yet past their first look at the queue: they take what is pushed meanwhile. */
  private starting = 0;
  private waitingForRoom: Array<() => void> = [];
  private readonly maxBatch: number;
  private readonly concurrency: number;
  private readonly highWater: number;
  private readonly lowWater: number;

  constructor(private readonly opts: BatcherOptions<I, O>) {
    this.maxBatch = opts.maxBatch ?? 500;
    this.concurrency = opts.concurrency ?? 1;
    this.highWater = opts.highWater ?? Infinity;
    this.lowWater = opts.lowWater ?? this.highWater / 2;
  }

  /** Resolves with the item's result once its batch is written. */
  push(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      if (this.starting === 0 && this.lanes.size < this.concurrency) this.openLane();
    });
  }

  get queued(): number {
    return this.queue.length;
  }

  get congested(): boolean {
    return this.queue.length > this.highWater;
  }

  /** Resolves at once, or when the queue has drained to the low-water mark. */
  room(): Promise<void> {
    if (this.queue.length <= this.lowWater) return Promise.resolve();
    return new Promise((resolve) => this.waitingForRoom.push(resolve));
  }

  /** Resolves when every item pushed so far is written (or rejected). */
  async drain(): Promise<void> {
    while (this.lanes.size > 0) await Promise.all(this.lanes);
  }

  private openLane(): void {
    const lane = this.flush(() => this.lanes.delete(lane));
    this.lanes.add(lane);
  }

  /** Writes until the queue is empty; `done` runs in the same step as the last look at it, so an item pushed after opens a lane. */
  private async flush(done: () => void): Promise<void> {
    // Let the current turn of the event loop push what it has, so they share the statement.
    this.starting += 1;
    await new Promise<void>((resolve) => setImmediate(resolve));
    this.starting -= 1;
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, this.maxBatch);
      this.releaseRoom();
      await this.write(batch);
    }
    done();
  }

  private async write(batch: Array<Queued<I, O>>): Promise<void> {
    const { tries = 3, retryDelayMs, retryForMs = 0, maxRetryDelayMs, onError } = this.opts;
    const items = batch.map((q) => q.item);
    try {
      const results = await writePersistently(() => this.opts.run(items), {
        forMs: retryForMs, tries, firstDelayMs: retryDelayMs, maxDelayMs: maxRetryDelayMs,
        onRetry: (err) => onError?.(err, batch.length, true),
      });
      batch.forEach((q, i) => q.resolve(results[i]!));
    } catch (err) {
      onError?.(err, batch.length, false);
      for (const q of batch) q.reject(err);
    }
  }


  private releaseRoom(): void {
    if (this.queue.length > this.lowWater || this.waitingForRoom.length === 0) return;
    const waiting = this.waitingForRoom;
    this.waitingForRoom = [];
    for (const resolve of waiting) resolve();
  }
}
