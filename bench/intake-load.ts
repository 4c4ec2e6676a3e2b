// The intake bench's provider: posts `stateInstanceChanged` webhooks at a fixed rate over keep-alive
// connections, in its own process so its CPU is not the daemon's. Open loop: a call is sent when
// it is due whether or not earlier ones were answered, as the provider does. Driven over IPC.
import { randomInt } from "node:crypto";
import { monitorEventLoopDelay, performance } from "node:perf_hooks";
import { Pool } from "undici";
import { IntakeMix, type HookCall, type HookKind, type HookState } from "./intake-mix.js";
import { pushToParent, serveParent } from "./ipc.js";
import { summarize, type LatencySummary } from "./percentiles.js";

export interface IntakePlan {
  url: string;
  instances: Array<{ idInstance: string; hookToken: string }>;
  /** Webhooks a second from the provider, each with the right token. */
  rate: number;
  /** Webhooks a second from someone without a token: half name an instance of the fleet, half none. */
  unauthenticatedRate: number;
  /** Posted first at the same rate and left out of every figure: connections, pools and caches fill up. */
  warmUpSeconds: number;
  seconds: number;
}

export interface IntakeProgress {
  sent: number;
  answered: number;
  inFlight: number;
  refused: number;
}

export interface IntakeLoadResult {
  sent: number;
  answered200: number;
  /** Answers other than 200 by status ("error": no answer at all), authenticated calls of the measured part only. */
  non200: Record<string, number>;
  latencyMs: LatencySummary;
  kinds: Record<HookKind, number>;
  /** The same latencies by kind of call: a change starts or ends a session, the others only write. */
  latencyByKindMs: Record<HookKind, LatencySummary>;
  /** The newest state sent to each instance, in the plan's order. */
  expected: ReadonlyArray<HookState | null>;
  unauthenticated: {
    sent: number;
    answers: Record<string, number>;
    /** A known idInstance with a wrong token, and an idInstance of no instance: alike if nothing leaks. */
    knownIdLatencyMs: LatencySummary;
    unknownIdLatencyMs: LatencySummary;
  };
  /** This process's own event-loop delay: latencies include up to about this much of our lag. */
  loopDelayP99Ms: number;
  drainMs: number;
}

export interface IntakeLoadApi {
  run(plan: IntakePlan): Promise<IntakeLoadResult>;
  stop(arg: null): void;
}

const TICK_MS = 2;
const CONNECTIONS = { provider: 128, stranger: 64 };
const DRAIN_MAX_MS = 30_000;
/** idInstances no instance of the bench has (the fleet's start with 7302). */
const unknownIdInstance = () => `7399${randomInt(100_000_000, 999_999_999)}`;

class Tally {
  sent = 0;
  answered = 0;
  readonly statuses: Record<string, number> = {};
  /** Set at the end of the drain: what comes after (the pool's own cancellations) is not an answer. */
  closed = false;

  count(status: number | "error"): void {
    this.answered += 1;
    this.statuses[status] = (this.statuses[status] ?? 0) + 1;
  }
}

/** Posts one webhook; its latency goes to every list of `sinks`. */
function post(pool: Pool, authorization: string, body: string, tally: Tally, sinks: number[][]): void {
  const started = performance.now();
  tally.sent += 1;
  pool
    .request({ method: "POST", path: "/hooks/greenapi", headers: { "content-type": "application/json", authorization }, body })
    .then(async (res) => {
      await res.body.dump();
      return res.statusCode;
    }, () => "error" as const)
    .then((status) => {
      if (tally.closed) return;
      const ms = performance.now() - started;
      for (const sink of sinks) sink.push(ms);
      tally.count(status);
    });
}

/** Nearest-rank figures, to 0.1 ms. */
function latency(values: number[]): LatencySummary {
  const round = (v: number | null) => (v === null ? null : Math.round(v * 10) / 10);
  const s = summarize(values);
  return { p50: round(s.p50), p99: round(s.p99), max: round(s.max) };
}

function body(idInstance: string, state: HookState, timestamp: number): string {
  return JSON.stringify({
    typeWebhook: "stateInstanceChanged",
    instanceData: { idInstance: Number(idInstance), wid: "79000000000@c.us", typeInstance: "whatsapp" },
    timestamp,
    stateInstance: state,
  });
}

/** What one stretch of the run saw: the warm-up's is thrown away. */
class Window {
  readonly own = new Tally();
  readonly foreign = new Tally();
  readonly latencies: number[] = [];
  readonly byKind: Record<HookKind, number[]> = { repeat: [], retry: [], change: [], late: [] };
  readonly known: number[] = [];
  readonly unknown: number[] = [];

  get unanswered(): number {
    return this.own.sent - this.own.answered + this.foreign.sent - this.foreign.answered;
  }
}

async function run(plan: IntakePlan): Promise<IntakeLoadResult> {
  const origin = new URL(plan.url).origin;
  const provider = new Pool(origin, { connections: CONNECTIONS.provider, keepAliveTimeout: 60_000, headersTimeout: 30_000, bodyTimeout: 30_000 });
  const stranger = new Pool(origin, { connections: CONNECTIONS.stranger, keepAliveTimeout: 60_000, headersTimeout: 30_000, bodyTimeout: 30_000 });
  const mix = new IntakeMix(plan.instances.length);
  const warmUp = new Window();
  const measured = new Window();
  let w = warmUp;
  let kindsBefore: Record<HookKind, number> = { ...mix.counts };
  const loop = monitorEventLoopDelay({ resolution: 10 });
  const sent = { own: 0, foreign: 0 };

  const sendOne = (call: HookCall) => {
    const inst = plan.instances[call.index]!;
    sent.own += 1;
    post(provider, `Bearer ${inst.hookToken}`, body(inst.idInstance, call.state, call.timestamp), w.own, [w.latencies, w.byKind[call.kind]]);
  };
  const sendStranger = () => {
    const isKnown = sent.foreign++ % 2 === 0;
    const idInstance = isKnown ? plan.instances[randomInt(plan.instances.length)]!.idInstance : unknownIdInstance();
    post(stranger, `Bearer not-the-token-${randomInt(1e9)}`, body(idInstance, "notAuthorized", Math.floor(Date.now() / 1000)), w.foreign, [isKnown ? w.known : w.unknown]);
  };

  const start = performance.now();
  const totalMs = (plan.warmUpSeconds + plan.seconds) * 1000;
  const progress = setInterval(() => {
    const { own, foreign } = w;
    pushToParent("progress", { sent: own.sent, answered: own.answered, inFlight: own.sent - own.answered, refused: foreign.answered } satisfies IntakeProgress);
  }, 1000);
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      const elapsed = Math.min(performance.now() - start, totalMs);
      if (w === warmUp && elapsed >= plan.warmUpSeconds * 1000) {
        w = measured;
        kindsBefore = { ...mix.counts };
        loop.enable();
        pushToParent("measuring", null);
      }
      const nowS = Math.floor(Date.now() / 1000);
      while (sent.own < Math.floor((plan.rate * elapsed) / 1000)) sendOne(mix.next(nowS));
      while (sent.foreign < Math.floor((plan.unauthenticatedRate * elapsed) / 1000)) sendStranger();
      if (elapsed >= totalMs) {
        clearInterval(timer);
        resolve();
      }
    }, TICK_MS);
  });
  const drainStart = performance.now();
  while (warmUp.unanswered + measured.unanswered > 0 && performance.now() - drainStart < DRAIN_MAX_MS) {
    await new Promise((r) => setTimeout(r, 20));
  }
  clearInterval(progress);
  loop.disable();
  // What is still unanswered after the drain is counted as such; close() would wait for it.
  for (const t of [warmUp.own, warmUp.foreign, measured.own, measured.foreign]) t.closed = true;
  await Promise.all([provider.destroy(), stranger.destroy()]);
  const kinds = Object.fromEntries(Object.entries(mix.counts).map(([k, n]) => [k, n - kindsBefore[k as HookKind]])) as Record<HookKind, number>;
  return summary(measured, mix, kinds, { loopDelayP99Ms: Math.round(loop.percentile(99) / 1e5) / 10, drainMs: Math.round(performance.now() - drainStart), warmUpUnanswered: warmUp.unanswered });
}

function summary(m: Window, mix: IntakeMix, kinds: Record<HookKind, number>, extra: { loopDelayP99Ms: number; drainMs: number; warmUpUnanswered: number }): IntakeLoadResult {
  const { own, foreign, byKind } = m;
  const non200: Record<string, number> = Object.fromEntries(Object.entries(own.statuses).filter(([status]) => status !== "200"));
  if (own.sent > own.answered) non200.unanswered = own.sent - own.answered;
  if (extra.warmUpUnanswered > 0) non200.warmUpUnanswered = extra.warmUpUnanswered;
  return {
    sent: own.sent,
    answered200: own.statuses["200"] ?? 0,
    non200,
    latencyMs: latency(m.latencies),
    kinds,
    latencyByKindMs: { repeat: latency(byKind.repeat), retry: latency(byKind.retry), change: latency(byKind.change), late: latency(byKind.late) },
    expected: mix.expected(),
    unauthenticated: { sent: foreign.sent, answers: foreign.statuses, knownIdLatencyMs: latency(m.known), unknownIdLatencyMs: latency(m.unknown) },
    loopDelayP99Ms: extra.loopDelayP99Ms,
    drainMs: extra.drainMs,
  };
}

serveParent<IntakeLoadApi>({
  run,
  stop: () => void setImmediate(() => process.exit(0)),
});
