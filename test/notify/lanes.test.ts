import { describe, expect, it } from "vitest";
import { Lane } from "../../src/notify/lanes.js";

interface Item {
  key: string;
  supersedes: boolean;
  n: number;
}

/** A lane whose sends finish when the test says so. */
function lane(limit: number) {
  const started: Item[] = [];
  const dropped: Item[] = [];
  const finish = new Map<number, () => void>();
  const l = new Lane<Item>(
    limit,
    (item) => {
      started.push(item);
      return new Promise<void>((resolve) => finish.set(item.n, resolve));
    },
    (item) => dropped.push(item),
  );
  const done = async (n: number) => {
    finish.get(n)!();
    await new Promise((r) => setImmediate(r));
  };
  return { l, started, dropped, done };
}

const item = (key: string, n: number, supersedes = true): Item => ({ key, n, supersedes });

describe("a channel's lane", () => {
  it("sends one item of a key at a time and in order, different keys side by side up to the limit", async () => {
    const { l, started, done } = lane(2);
    l.push(item("a", 1, false));
    l.push(item("a", 2, false));
    l.push(item("b", 3, false));
    l.push(item("c", 4, false));
    expect(started.map((i) => i.n)).toEqual([1, 3]);
    await done(1);
    expect(started.map((i) => i.n)).toEqual([1, 3, 4]); // c waited longer than a's second item
    await done(3);
    expect(started.map((i) => i.n)).toEqual([1, 3, 4, 2]);
    expect(l.size).toBe(2);
  });

  it("replaces a key's waiting QR updates with the newest, and keeps what must go out", async () => {
    const { l, started, dropped, done } = lane(1);
    l.push(item("a", 1));
    l.push(item("a", 2));
    l.push(item("a", 3));
    l.push(item("a", 4, false)); // an outcome: never replaced
    l.push(item("a", 5));
    expect(dropped.map((i) => i.n)).toEqual([2, 3]);
    await done(1);
    await done(4);
    expect(started.map((i) => i.n)).toEqual([1, 4, 5]);
  });

  it("hands back what has not started, and tells when nothing is in flight", async () => {
    const { l, done } = lane(1);
    l.push(item("a", 1));
    l.push(item("b", 2));
    expect(l.takeWaiting().map((i) => i.n)).toEqual([2]);
    let idle = false;
    const waiting = l.whenIdle().then(() => (idle = true));
    expect(idle).toBe(false);
    await done(1);
    await waiting;
    expect(idle).toBe(true);
    expect(l.size).toBe(0);
  });
});
