import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, describe, expect, it } from "vitest";
import { createQueues, redisTarget } from "../../src/queues.js";
import { SlotClaims } from "../../src/fleet/triggers/slot-claims.js";
import { newPrefix, testConfig } from "../support/fleet.js";

/** Claims on the sweep's slots, against Redis: who sweeps which slot, and who takes over a dead daemon's. */

const plan = { slices: 6, sliceMs: 500, intervalMs: 3_000 };
const queues = createQueues(redisTarget(testConfig()));
afterAll(() => queues.close());

/** Daemons of one fleet of their own, by name. */
function fleetOf<Names extends string[]>(...names: Names): { [K in keyof Names]: SlotClaims } {
  const prefix = newPrefix();
  return names.map((name) => new SlotClaims(queues.connection, prefix, name, plan)) as { [K in keyof Names]: SlotClaims };
}

describe("claims on the sweep's slots", () => {
  it("hand each slot to one daemon however many ask at once, and none before the first slot asked for", async () => {
    const daemons = fleetOf(...Array.from({ length: 12 }, (_, i) => `daemon-${i}`));
    const first = await Promise.all(daemons.map((d) => d.claim(90, 100)));
    // A fleet that starts does not take the slots before it (90…99) for abandoned ones.
    expect(first.filter((s) => s !== null)).toEqual([100]);
    const next = await Promise.all(daemons.map((d) => d.claim(95, 101)));
    expect(next.filter((s) => s !== null)).toEqual([101]);
    const none = await Promise.all(daemons.map((d) => d.claim(95, 101)));
    expect(none.every((s) => s === null)).toBe(true);
  });

  it("give the oldest free slot first, and never one that was swept", async () => {
    const [a, b] = fleetOf("a", "b");
    expect(await a.claim(10, 20)).toBe(20);
    expect(await b.claim(10, 22)).toBe(21); // 21 was due and nobody took it: before 22
    expect(await b.claim(10, 22)).toBe(22);
    await a.finish(20);
    await b.finish(21);
    await sleep(a.leaseMs + 200);
    // 20 and 21 were swept; 22's holder said nothing for a lease: it died, and 22 is free again.
    expect(await a.claim(10, 23)).toBe(22);
    expect(await a.claim(10, 23)).toBe(23);
  });

  it("take over a dead daemon's slot only once its lease runs out, and leave one renewed while it runs long", async () => {
    const [dead, slow, other] = fleetOf("dead", "slow", "other");
    expect(await dead.claim(0, 5)).toBe(5);
    expect(await slow.claim(0, 6)).toBe(6);
    await sleep(slow.leaseMs / 2);
    expect(await other.claim(0, 6)).toBeNull();
    expect(await slow.renew(6)).toBe(true);
    await sleep(slow.leaseMs / 2 + 200);
    expect(await other.claim(0, 6)).toBe(5);
    expect(await other.claim(0, 6)).toBeNull(); // 6's lease was renewed
    // The dead daemon's claim is gone: it can neither renew it nor mark it done.
    expect(await dead.renew(5)).toBe(false);
    await dead.finish(5);
    await sleep(other.leaseMs + 200);
    expect(await slow.claim(0, 6)).toBe(5); // still not done: its new holder did not finish it either
  });
});
