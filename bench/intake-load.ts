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
  /** Answers other than 200 by status ("error": no answer at all), authenticated calls only. */
  non200: Record<string, number>;
  latencyMs: LatencySummary;
  kinds: Record<HookKind, number>;
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

function post(pool: Pool, authorization: string, body: string, tally: Tally, latencies: number[]): void {
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
      latencies.push(performance.now() - started);
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

async function run(plan: IntakePlan): Promise<IntakeLoadResult> {
  const origin = new URL(plan.url).origin;
  const provider = new Pool(origin, { connections: CONNECTIONS.provider, keepAliveTimeout: 60_000, headersTimeout: 30_000, bodyTimeout: 30_000 });
  const stranger = new Pool(origin, { connections: CONNECTIONS.stranger, keepAliveTimeout: 60_000, headersTimeout: 30_000, bodyTimeout: 30_000 });
  const mix = new IntakeMix(plan.instances.length);
  const own = new Tally();
  const foreign = new Tally();
  const latencies: number[] = [];
  const known: number[] = [];
  const unknown: number[] = [];
  const loop = monitorEventLoopDelay({ resolution: 10 });
  loop.enable();

  const sendOne = (call: HookCall) => {
    const inst = plan.instances[call.index]!;
    post(provider, `Bearer ${inst.hookToken}`, body(inst.idInstance, call.state, call.timestamp), own, latencies);
  };
  const sendStranger = () => {
    const isKnown = foreign.sent % 2 === 0;
    const idInstance = isKnown ? plan.instances[randomInt(plan.instances.length)]!.idInstance : unknownIdInstance();
    post(stranger, `Bearer not-the-token-${randomInt(1e9)}`, body(idInstance, "notAuthorized", Math.floor(Date.now() / 1000)), foreign, isKnown ? known : unknown);
  };

  const start = performance.now();
  const progress = setInterval(() => {
    pushToParent("progress", { sent: own.sent, answered: own.answered, inFlight: own.sent - own.answered, refused: foreign.answered } satisfies IntakeProgress);
  }, 1000);
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      const elapsed = Math.min(performance.now() - start, plan.seconds * 1000);
      const nowS = Math.floor(Date.now() / 1000);
      while (own.sent < Math.floor((plan.rate * elapsed) / 1000)) sendOne(mix.next(nowS));
      while (foreign.sent < Math.floor((plan.unauthenticatedRate * elapsed) / 1000)) sendStranger();
      if (elapsed >= plan.seconds * 1000) {
        clearInterval(timer);
        resolve();
      }
    }, TICK_MS);
  });
  const drainStart = performance.now();
  while ((own.answered < own.sent || foreign.answered < foreign.sent) && performance.now() - drainStart < DRAIN_MAX_MS) {
    await new Promise((r) => setTimeout(r, 20));
  }
  clearInterval(progress);
  loop.disable();
  // What is still unanswered after the drain is counted as such; close() would wait for it.
  own.closed = foreign.closed = true;
  await Promise.all([provider.destroy(), stranger.destroy()]);
  const non200 = Object.fromEntries(Object.entries(own.statuses).filter(([status]) => status !== "200"));
  const unanswered = own.sent - own.answered;
  return {
    sent: own.sent,
    answered200: own.statuses["200"] ?? 0,
    non200: unanswered > 0 ? { ...non200, unanswered } : non200,
    latencyMs: latency(latencies),
    kinds: mix.counts,
    expected: mix.expected(),
    unauthenticated: {
      sent: foreign.sent,
      answers: foreign.statuses,
      knownIdLatencyMs: latency(known),
      unknownIdLatencyMs: latency(unknown),
    },
    loopDelayP99Ms: Math.round(loop.percentile(99) / 1e5) / 10,
    drainMs: Math.round(performance.now() - drainStart),
  };
}

serveParent<IntakeLoadApi>({
  run,
  stop: () => void setImmediate(() => process.exit(0)),
});
