import type { Simulator, SimulatorOptions, SimulatorStats } from "../src/simulator/index.js";
import { DeliveryLedger, type LedgerResult } from "./ledger.js";
import { LogoutPlan, type LogoutResult } from "./logouts.js";
import { PollLedger, type PollResult } from "./poll-ledger.js";
import { watchInstances, type FleetSpec } from "./watch-fleet.js";

/**
 * The peers' side of a watch phase: a simulator whose instances are all linked and whose
 * getStateInstance answers after a latency, the poll ledger fed by every answer, and the logouts.
 */

export interface WatchPhaseDefinition {
  /** Webhook path of the phase at the receiver. */
  path: string;
  fleet: FleetSpec;
  stateLatencyMs: number;
  rotateMs: number;
  windowMs: number;
}

export interface WatchResult {
  polls: PollResult;
  logouts: LogoutResult;
  qr: LedgerResult;
  simulator: Pick<SimulatorStats, "stateAnswers" | "httpConnections" | "restRequests" | "connections" | "webhooksSent" | "webhooksFailed">;
  peersLoopDelayP99Ms: number;
}

export interface WatchApi {
  watchPhase(def: WatchPhaseDefinition): Promise<{ simUrl: string }>;
  /** The measured processes started at `at`; provider webhooks go to `webhookTargets` in turn. */
  watchStart(arg: { at: number; webhookTargets: string[] }): void;
  /** The measured window starts now, and with it `logouts` logouts spread over `spreadMs`. */
  watchMeasure(arg: { logouts: number; spreadMs: number }): { at: number };
  watchResults(arg: null): WatchResult;
}

/** A running watch phase. */
export class Watch {
  plan: LogoutPlan | null = null;

  constructor(
    readonly polls: PollLedger,
    /** idInstance by index, in the ledgers' order. */
    readonly ids: readonly string[],
  ) {}

  /** The end of the measured window: no more logouts, no more polls counted. */
  freeze(): void {
    this.plan?.cancel();
    this.polls.close(Date.now());
  }
}

interface WatchDeps {
  begin(path: string, ledger: DeliveryLedger, options: SimulatorOptions, watch: Watch): Promise<Simulator>;
  now(): { sim: Simulator; ledger: DeliveryLedger; watch?: Watch };
  loopDelayP99Ms(): number;
}

export function watchHandlers(deps: WatchDeps): WatchApi {
  const watchNow = () => {
    const phase = deps.now();
    if (!phase.watch) throw new Error("the running phase is not a watch phase");
    return { ...phase, watch: phase.watch };
  };
  return {
    async watchPhase({ path, fleet, stateLatencyMs, rotateMs, windowMs }) {
      const instances = watchInstances(fleet);
      const ids = instances.map((i) => i.idInstance);
      const ledger = new DeliveryLedger(ids);
      const watch = new Watch(new PollLedger(ids.length, Date.now()), ids);
      const stateAnswered = ({ idInstance, at }: { idInstance: string; at: number }) => {
        const index = ledger.instanceIndex(idInstance);
        if (index !== undefined) watch.polls.answered(index, at);
      };
      const sim = await deps.begin(
        path,
        ledger,
        { defaults: { fate: "authorized", stateLatencyMs, rotationMs: rotateMs, scanWindowMs: windowMs }, instances, hooks: { stateAnswered } },
        watch,
      );
      return { simUrl: sim.url };
    },

    watchStart({ at, webhookTargets }) {
      const { sim, watch } = watchNow();
      watch.polls.begin(at);
      sim.webhookTargets(webhookTargets);
    },

    watchMeasure({ logouts, spreadMs }) {
      const { sim, watch } = watchNow();
      const at = Date.now();
      watch.polls.startWindow(at);
      if (logouts === 0) return { at };
      const { ids } = watch;
      watch.plan = new LogoutPlan(ids.length, logouts);
      watch.plan.start(spreadMs, (index) => {
        const id = ids[index]!;
        // From now on a QR socket rotates codes until its scan window ends, as for a phone nobody scans.
        sim.script(id, { fate: "never" });
        sim.setState(id, "notAuthorized");
        watch.polls.stop(index, Date.now());
      }, at);
      return { at };
    },

    watchResults() {
      const { sim, ledger, watch } = watchNow();
      const stats = sim.stats();
      const noLogouts: LogoutResult = { planned: 0, done: 0, toFirstQrMs: { p50: null, p99: null, max: null }, lost: 0 };
      return {
        polls: watch.polls.result(),
        logouts: watch.plan?.result((i) => ledger.firstDelivery(i)) ?? noLogouts,
        qr: ledger.result(),
        simulator: {
          stateAnswers: stats.stateAnswers,
          httpConnections: stats.httpConnections,
          restRequests: stats.restRequests,
          connections: stats.connections,
          webhooksSent: stats.webhooksSent,
          webhooksFailed: stats.webhooksFailed,
        },
        peersLoopDelayP99Ms: deps.loopDelayP99Ms(),
      };
    },
  };
}
