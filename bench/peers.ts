// The bench's peers of the fleet, in one child process so their CPU is not counted as the
// daemon's: the fake provider, the operators' webhook receiver and mail server, and optionally a
// slow link to PostgreSQL. Driven by the orchestrator over IPC (see PeersApi).
import { monitorEventLoopDelay } from "node:perf_hooks";
import { createLogger } from "../src/log.js";
import { startSimulator, type Simulator, type SimulatorOptions } from "../src/simulator/index.js";
import { pushToParent, serveParent } from "./ipc.js";
import { DeliveryLedger, type LedgerResult } from "./ledger.js";
import { startDelayProxy, type DelayProxy } from "./pg-delay-proxy.js";
import { startReceiver, type WebhookReceiver } from "./receiver.js";
import { startSink, type MailSink } from "./sink.js";
import { watchHandlers, type Watch, type WatchApi } from "./watch-peers.js";

export interface PeersReady {
  receiverUrl: string;
  smtpUrl: string;
  /** The delaying proxy's port on 127.0.0.1, when a latency was asked. */
  pgProxyPort: number | null;
}

export interface PhaseDefinition {
  /** Webhook path of the phase: "/floor" or "/daemon". */
  path: string;
  instances: Array<{ idInstance: string; token: string }>;
  rotateMs: number;
  windowMs: number;
}

export interface PeerStats {
  at: number;
  openSockets: number;
  sent: number;
  webhooks: number;
  emails: number;
  /** getStateInstance answers so far (watch phases). */
  polls: number;
}

export interface PeersResult extends LedgerResult {
  /** The peers' own event-loop delay p99 over the phase: if it is large, latencies include our lag. */
  peersLoopDelayP99Ms: number;
}

export interface PeersApi extends WatchApi {
  start(arg: { pgLatencyMs: number; pgTarget: { host: string; port: number } }): Promise<PeersReady>;
  phase(arg: PhaseDefinition): Promise<{ simUrl: string }>;
  trust(arg: { path: string; secret: string }): void;
  freeze(arg: null): void;
  drain(arg: { quietMs: number; maxMs: number }): Promise<{ waitedMs: number }>;
  results(arg: null): PeersResult;
  endPhase(arg: null): Promise<void>;
  stop(arg: null): Promise<void>;
}

/** Pre-rendered pictures behind the tagged frames; 64 keeps consecutive frames of a socket visibly different. */
const IMAGE_POOL = 64;

let receiver: WebhookReceiver | undefined;
let sink: MailSink | undefined;
let proxy: DelayProxy | undefined;
let current: { sim: Simulator; ledger: DeliveryLedger; path: string; watch?: Watch } | undefined;
const loop = monitorEventLoopDelay({ resolution: 10 });
const log = createLogger({ level: "warn", name: "bench-peers" });

const handlers: PeersApi = {
  async start({ pgLatencyMs, pgTarget }) {
    receiver = await startReceiver();
    sink = await startSink();
    proxy = pgLatencyMs > 0 ? await startDelayProxy(pgTarget, pgLatencyMs) : undefined;
    setInterval(() => pushToParent("stats", stats()), 1000).unref();
    return { receiverUrl: receiver.url, smtpUrl: sink.url, pgProxyPort: proxy?.port ?? null };
  },

  async phase({ path, instances, rotateMs, windowMs }) {
    const ledger = new DeliveryLedger(instances.map((i) => i.idInstance));
    const sim = await begin(path, ledger, { defaults: { fate: "never", rotationMs: rotateMs, scanWindowMs: windowMs }, instances });
    return { simUrl: sim.url };
  },

  ...watchHandlers({ begin, now: () => phaseNow(), loopDelayP99Ms }),

  trust: ({ path, secret }) => receiver!.trust(path, secret),

  freeze: () => {
    const { sim, watch } = phaseNow();
    sim.freeze();
    watch?.freeze();
  },

  async drain({ quietMs, maxMs }) {
    const { ledger } = phaseNow();
    const started = Date.now();
    // Quiet means nothing arrived for quietMs, counted from the freeze at the earliest.
    while (Date.now() - Math.max(ledger.lastArrivalAt, started) < quietMs && Date.now() - started < maxMs) {
      await new Promise((r) => setTimeout(r, 100));
    }
    return { waitedMs: Date.now() - started };
  },

  results: () => ({ ...phaseNow().ledger.result(), peersLoopDelayP99Ms: loopDelayP99Ms() }),

  async endPhase() {
    if (!current) return;
    const { sim, path } = current;
    current = undefined;
    receiver?.closeChannel(path);
    sink?.routeTo(null);
    await sim.close();
  },

  async stop() {
    await handlers.endPhase(null);
    await Promise.allSettled([receiver?.close(), sink?.close(), proxy?.close()]);
    setImmediate(() => process.exit(0));
  },
};

/** Starts the phase's simulator with the ledger's hooks (besides the options' own), and routes deliveries to the ledger. */
async function begin(path: string, ledger: DeliveryLedger, options: SimulatorOptions, watch?: Watch): Promise<Simulator> {
  if (current) throw new Error("a phase is still running");
  const sim = await startSimulator({
    log,
    imageMode: "tagged",
    imagePoolSize: IMAGE_POOL,
    ...options,
    hooks: {
      ...options.hooks,
      qrFrame: (f) => ledger.frameSent(f),
      socketOpened: (s) => ledger.socketOpened(s.idInstance, s.connection),
      socketClosed: (s) => ledger.socketClosed(s.idInstance),
    },
  });
  receiver!.open(path, ledger);
  sink!.routeTo(ledger);
  current = { sim, ledger, path, watch };
  loop.reset();
  loop.enable();
  return sim;
}

/** The peers' event-loop delay p99 since the phase began, ms; stops the measurement. */
function loopDelayP99Ms(): number {
  loop.disable();
  return Math.round(loop.percentile(99) / 1e5) / 10;
}

function phaseNow() {
  if (!current) throw new Error("no phase is running");
  return current;
}

function stats(): PeerStats {
  const l = current?.ledger;
  const polls = current?.watch?.polls.answers ?? 0;
  return { at: Date.now(), openSockets: l?.open ?? 0, sent: l?.sent ?? 0, webhooks: l?.webhooks ?? 0, emails: l?.emails ?? 0, polls };
}

serveParent(handlers);
