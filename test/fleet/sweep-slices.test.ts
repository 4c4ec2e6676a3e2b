import { Queue } from "bullmq";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PHASES, phasesOf, slicePlan, slotAt } from "../../src/fleet/triggers/sweep-slices.js";
import { startSimulator, type Simulator } from "../../src/simulator/index.js";
import type { Daemon } from "../../workers/daemon.js";
import { RETIRED_SLICE_QUEUE, createQueues, redisTarget } from "../../src/queues.js";
import { deleteRedisKeys, newPrefix, simulatedInstance, startTestDaemon, testConfig, waitFor } from "../support/fleet.js";
import { spawnDaemon, type Spawned } from "../support/spawn.js";

const INTERVAL_MS = 3_000;
const SLOW = { QRFLEET_SWEEP_INTERVAL_MS: String(INTERVAL_MS), QRFLEET_SWEEP_SLICES: "6", QRFLEET_SWEEP_INTERVAL_HOOKED_MS: "0" };
const INSTANCES = 120;

describe("the sweep's slices", () => {
  it("cut every interval into slices whose phases cover each instance exactly once", () => {
    const plan = slicePlan(testConfig({ QRFLEET_SWEEP_INTERVAL_MS: "60000", QRFLEET_SWEEP_SLICES: "7" }))!;
    const covered = Array.from({ length: plan.slices }, (_, s) => phasesOf(plan, s));
    expect(covered[0]![0]).toBe(0);
    expect(covered.at(-1)![1]).toBe(PHASES);
    covered.slice(1).forEach(([from], s) => expect(from).toBe(covered[s]![1]));
    const at = Date.UTC(2026, 11, 6, 12, 0, 30, 400);
    const slot = slotAt(plan, at);
    expect(slot.startMs).toBeLessThanOrEqual(at);
    expect(slot.startMs + plan.sliceMs).toBeGreaterThan(at);
    expect(slot.cycleStartMs + slot.slice * plan.sliceMs).toBe(slot.startMs);
    expect(slicePlan(testConfig({ QRFLEET_SWEEP_INTERVAL_MS: "0" }))).toBeNull();
    expect(slicePlan(testConfig({ QRFLEET_SWEEP_INTERVAL_MS: "2000", QRFLEET_SWEEP_SLICES: "60" }))!.slices).toBe(4);
  });
});

/** When the simulator last answered each instance's state, and the longest gap since `reset`. */
class PollGaps {
  private last = new Map<string, number>();
  private longest = 0;
  answered = (a: { idInstance: string; at: number }) => {
    const before = this.last.get(a.idInstance);
    if (before !== undefined) this.longest = Math.max(this.longest, a.at - before);
    this.last.set(a.idInstance, a.at);
  };
  reset(): void {
    this.longest = 0;
  }
  /** The longest gap seen, or still open now, over `instances` instances (one never answered counts as a failure). */
  longestOver(instances: number, since: number): number {
    if (this.last.size < instances) return Infinity;
    const open = Math.max(...[...this.last.values()].map((at) => Date.now() - Math.max(at, since)));
    return Math.max(this.longest, open);
  }
}

/** What a daemon of the version whose slots were queue jobs leaves in Redis: a delayed slot and its queue. */
async function leaveRetiredSliceJobs(prefix: string): Promise<void> {
  const queues = createQueues(redisTarget(testConfig({ QRFLEET_REDIS_PREFIX: prefix })));
  const retired = new Queue(RETIRED_SLICE_QUEUE, { connection: queues.connection, prefix: queues.prefix });
  await retired.add("slice", { slot: 1, sliceMs: 500 }, { jobId: "slice-500-1", delay: 60_000 });
  expect((await queues.connection.keys(`${prefix}:${RETIRED_SLICE_QUEUE}:*`)).length).toBeGreaterThan(0);
  await retired.close();
  await queues.close();
}

describe("a sweep two daemons share", () => {
  let sim: Simulator;
  const gaps = new PollGaps();
  let here: Daemon;
  let there: Spawned;
  const prefix = newPrefix();
  const pollsHere = { n: 0 };

  beforeAll(async () => {
    sim = await startSimulator({ defaults: { rotationMs: 200, scanWindowMs: 60_000 }, hooks: { stateAnswered: gaps.answered } });
    await leaveRetiredSliceJobs(prefix);
    here = await startTestDaemon({ QRFLEET_REDIS_PREFIX: prefix, ...SLOW });
    await Promise.all(Array.from({ length: INSTANCES }, () => simulatedInstance(here.ctx, sim, { fate: "authorized" })));
    here.ctx.events.on("sweep:polled", (p) => void (pollsHere.n += p.polls));
    there = spawnDaemon({ QRFLEET_REDIS_PREFIX: prefix, ...SLOW, QRFLEET_ADMIN_TOKEN: here.ctx.config.QRFLEET_ADMIN_TOKEN });
    await there.waitForLine(/qrfleet daemon started/);
  }, 60_000);
  afterAll(async () => {
    there?.child.kill("SIGKILL");
    await here?.close();
    await sim?.close();
  });

  /** The longest any instance went unpolled over the next `ms`. */
  async function longestUnchecked(ms: number): Promise<number> {
    const since = Date.now();
    gaps.reset();
    await new Promise((r) => setTimeout(r, ms));
    return gaps.longestOver(INSTANCES, since);
  }

  const pollsThere = async () => {
    const url = /"url":"([^"]+)"/.exec(there.lines.find((l) => /qrfleet daemon started/.test(l))!)![1]!;
    const text = await (await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${here.ctx.config.QRFLEET_ADMIN_TOKEN}` } })).text();
    return [...text.matchAll(/^qrfleet_sweep_polls_total\{[^}]*\} (\d+)/gm)].reduce((sum, m) => sum + Number(m[1]), 0);
  };

  it("leaves nothing of the queue the slots were once jobs of", async () => {
    expect(await here.ctx.queues.connection.keys(`${prefix}:${RETIRED_SLICE_QUEUE}:*`)).toEqual([]);
  });

  it("polls every instance once an interval, at its own phase, with each daemon doing 40-60 % of it", async () => {
    // The start-up sweep settles, and each daemon's roster stamp (every 5 s) has seen the other.
    await new Promise((r) => setTimeout(r, 2 * INTERVAL_MS));
    const [hereBefore, thereBefore] = [pollsHere.n, await pollsThere()];
    // Five intervals, 30 slots: enough that one slot more or less for a daemon moves its share by 3 %.
    const intervals = 5;
    const longest = await longestUnchecked(intervals * INTERVAL_MS);
    const [hereDid, thereDid] = [pollsHere.n - hereBefore, (await pollsThere()) - thereBefore];
    // Each instance at its phase once an interval; a sweep that missed an interval would show twice it.
    expect(longest).toBeLessThan(INTERVAL_MS + 1_000);
    const total = hereDid + thereDid;
    expect(total).toBeGreaterThanOrEqual(INSTANCES * (intervals - 0.5));
    expect(total).toBeLessThanOrEqual(INSTANCES * (intervals + 0.5)); // no slice swept twice
    // The slots go round the two daemons in turn, not to whichever wakes first.
    expect(Math.min(hereDid, thereDid) / total).toBeGreaterThan(0.4);
  }, 45_000);

  it("takes over the slices of a daemon killed mid-sweep within an interval", async () => {
    there.child.kill("SIGKILL");
    await there.exited;
    const before = pollsHere.n;
    await waitFor("the daemon left to poll the whole fleet", async () => pollsHere.n - before >= INSTANCES, 4 * INTERVAL_MS);
    // Its lock runs out and the stalled slot is swept late; from the next interval on, every instance is at its phase again.
    await new Promise((r) => setTimeout(r, INTERVAL_MS));
    // Half the fleet was the dead daemon's: without a takeover it would go two intervals and more unpolled.
    expect(await longestUnchecked(2 * INTERVAL_MS)).toBeLessThan(INTERVAL_MS + 1_500);
  });

  it("goes on polling every instance at its phase after Redis loses every key", async () => {
    const since = Date.now();
    gaps.reset();
    expect(await deleteRedisKeys(here.ctx.queues.connection, prefix)).toBeGreaterThan(0);
    await new Promise((r) => setTimeout(r, 2 * INTERVAL_MS));
    expect(gaps.longestOver(INSTANCES, since)).toBeLessThan(INTERVAL_MS + 1_000);
  });
});

describe("an instance whose provider webhook is trusted", () => {
  let sim: Simulator;
  let daemon: Daemon;
  const polls = { n: 0 };

  beforeAll(async () => {
    sim = await startSimulator({ defaults: { rotationMs: 200, scanWindowMs: 60_000 } });
    daemon = await startTestDaemon({ QRFLEET_REDIS_PREFIX: newPrefix(), ...SLOW, QRFLEET_SWEEP_INTERVAL_HOOKED_MS: String(3 * INTERVAL_MS) });
    await daemon.ctx.db.instance.updateMany({ data: { enabled: false } }); // the shared fleet above
    const added = await Promise.all(Array.from({ length: 90 }, () => simulatedInstance(daemon.ctx, sim, { fate: "authorized" })));
    const ids = (from: number, to: number) => added.slice(from, to).map((i) => i.id);
    // A third heard from the webhook, which agrees with the polls; a third whose webhook missed the link; a third never hooked.
    await daemon.ctx.db.instance.updateMany({ where: { id: { in: ids(0, 30) } }, data: { hookState: "authorized", hookSeenAt: new Date() } });
    await daemon.ctx.db.instance.updateMany({ where: { id: { in: ids(30, 60) } }, data: { hookState: "notAuthorized", hookSeenAt: new Date() } });
    daemon.ctx.events.on("sweep:polled", (p) => void (polls.n += p.polls));
  }, 60_000);
  afterAll(async () => {
    await daemon?.close();
    await sim?.close();
  });

  it("is polled only every QRFLEET_SWEEP_INTERVAL_HOOKED_MS, one whose webhook disagrees at the full rate", async () => {
    await new Promise((r) => setTimeout(r, INTERVAL_MS));
    const before = polls.n;
    await new Promise((r) => setTimeout(r, 3 * INTERVAL_MS));
    // 60 at the full rate over three intervals, and the trusted 30 once: 210; without the backstop rate, 270.
    expect(polls.n - before).toBeGreaterThanOrEqual(180);
    expect(polls.n - before).toBeLessThan(245);
  });

  it("does not take an instance nobody has heard of yet for one: a new instance is polled in its first interval", async () => {
    const fresh = await Promise.all(Array.from({ length: 30 }, () => simulatedInstance(daemon.ctx, sim, { fate: "authorized" })));
    const ids = fresh.map((i) => i.id);
    await new Promise((r) => setTimeout(r, INTERVAL_MS + 1_000));
    const rows = await daemon.ctx.db.instance.findMany({ where: { id: { in: ids } }, select: { lastState: true } });
    // Taken for trusted (no webhook word, no state: alike), each would be polled in one interval of three.
    expect(rows.map((r) => r.lastState)).toEqual(ids.map(() => "authorized"));
  });
});
