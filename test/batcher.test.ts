import { describe, expect, it } from "vitest";
import { Batcher } from "../src/lib/batcher.js";

describe("the batcher", () => {
  it("writes what one turn pushed in one batch, and what came meanwhile in the next, in order", async () => {
    const batches: number[][] = [];
    const b = new Batcher<number, number>({ run: async (items) => (batches.push(items), items.map((i) => i * 10)) });
    const first = [1, 2, 3].map((i) => b.push(i));
    expect(await Promise.all(first)).toEqual([10, 20, 30]);
    const second = [4, 5].map((i) => b.push(i));
    await b.drain();
    expect(await Promise.all(second)).toEqual([40, 50]);
    expect(batches).toEqual([[1, 2, 3], [4, 5]]);
  });

  it("with concurrency, writes the next batch while one is held up, and loses nothing pushed as a lane ends", async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const b = new Batcher<number, number>({ concurrency: 2, run: async (items) => (items.includes(1) ? await gate : undefined, items) });
    const held = b.push(1);
    await new Promise((r) => setImmediate(r));
    // The first batch is held; the second goes through beside it, and so does one pushed as its answer arrives.
    const next = await b.push(2).then((two) => Promise.all([two, b.push(3)]));
    expect(next).toEqual([2, 3]);
    release();
    expect(await held).toBe(1);
    await b.drain();
  });

  it("tries a failed batch again, then rejects its items and goes on with the next", async () => {
    let calls = 0;
    const errors: boolean[] = [];
    const b = new Batcher<number, number>({
      tries: 2,
      retryDelayMs: 1,
      onError: (_err, _n, willRetry) => errors.push(willRetry),
      run: async (items) => {
        calls += 1;
        if (items.includes(1)) throw new Error("connection reset");
        return items;
      },
    });
    await expect(b.push(1)).rejects.toThrow("connection reset");
    expect(await b.push(2)).toBe(2);
    expect(calls).toBe(3);
    expect(errors).toEqual([true, false]);
  });

  it("with retryForMs, keeps trying a failed batch past its tries until the write goes through", async () => {
    let failuresLeft = 6;
    const b = new Batcher<number, number>({
      tries: 2,
      retryDelayMs: 1,
      maxRetryDelayMs: 5,
      retryForMs: 5_000,
      run: async (items) => {
        if (failuresLeft-- > 0) throw new Error("the database system is starting up");
        return items;
      },
    });
    expect(await b.push(7)).toBe(7);
    expect(failuresLeft).toBe(-1);
  });

  it("cuts batches at maxBatch and says when intake must wait", async () => {
    const sizes: number[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const b = new Batcher<number, number>({ maxBatch: 2, highWater: 3, run: async (items) => (sizes.push(items.length), await gate, items) });
    const all = [1, 2, 3, 4, 5, 6, 7].map((i) => b.push(i));
    await new Promise((r) => setImmediate(r));
    expect(b.queued).toBe(5); // the first two are in flight
    expect(b.congested).toBe(true);
    let room = false;
    const waiting = b.room().then(() => (room = true));
    await new Promise((r) => setTimeout(r, 10));
    expect(room).toBe(false);
    release();
    await Promise.all(all);
    await waiting;
    expect(room).toBe(true);
    expect(sizes).toEqual([2, 2, 2, 1]);
  });
});
