import { ProcessMeter, serviceCpuMs } from "./meters.js";
import { DRAIN } from "./phase.js";
import type { PeerStats } from "./peers.js";
import { sleepUntil, type Run } from "./run-context.js";
import type { WatchResult } from "./watch-peers.js";

/**
 * The measured part of a watch phase: from t0 a progress line on stderr once a second; after the
 * warm-up, CPU readings of the measured processes, PostgreSQL, Redis and the peers at both ends of
 * the measured window, which also starts the logouts.
 */

export interface WatchMeasured {
  peers: WatchResult;
  /** ms from t0: when every measured process was ready, and when the window began. */
  readyMs: number | null;
  windowStartMs: number;
  /** Over the window: the measured processes (each, in the order they were added), PostgreSQL, Redis, the peers. */
  processes: Array<{ cpuMs: number; peakRssMb: number }>;
  postgresCpuMs: number | null;
  redisCpuMs: number | null;
  peersCpuMs: number;
  drainMs: number;
}

interface Reading {
  each: number[];
  services: { postgres: number | null; redis: number | null };
  peers: number;
}

export class WatchWindow {
  readonly meter = new ProcessMeter();
  private readonly peersMeter = new ProcessMeter();
  private readonly ticker: NodeJS.Timeout;
  private readonly stopTicker: () => Promise<void>;
  private previous: { stats: PeerStats; cpuMs: number; at: number } | undefined;
  private readyAt: number | null = null;
  private start: { at: number; reading: Reading } | null = null;

  constructor(
    private readonly run: Run,
    private readonly label: string,
    readonly t0: number,
  ) {
    this.peersMeter.add(run.peersPid);
    this.ticker = setInterval(() => this.progress(), 1000);
    this.stopTicker = run.teardown.add(`stop the ${label} progress line`, async () => clearInterval(this.ticker));
  }

  markReady(): number {
    this.readyAt ??= Date.now();
    return this.readyAt;
  }

  /** At `at`: the window opens, with `logouts` logouts spread over `spreadMs`. */
  async open(at: number, logouts: { count: number; spreadMs: number }, failure: Promise<never>): Promise<void> {
    await Promise.race([sleepUntil(at, this.run.signal), failure]);
    await this.run.peers.call("watchMeasure", { logouts: logouts.count, spreadMs: logouts.spreadMs });
    this.start = { at: Date.now(), reading: this.read() };
    process.stderr.write(`[${this.label}] t=${Math.round((this.start.at - this.t0) / 1000)}s warm-up over: measuring\n`);
  }

  /**
   * Waits for the deadline (or a measured process's death), freezes the provider, reads the CPU
   * and calls `atEnd` (what else ends with the window), drains the webhooks, collects the figures.
   */
  async until(deadline: number, failure: Promise<never>, atEnd: () => Promise<unknown> = async () => undefined): Promise<WatchMeasured> {
    try {
      if (!this.start) throw new Error("the measured window was never opened");
      await Promise.race([sleepUntil(deadline, this.run.signal), failure]);
      await this.run.peers.call("freeze", null);
      const end = this.read();
      await atEnd();
      const peaks = this.meter.each().map((p) => p.peakMb);
      const { waitedMs } = await this.run.peers.call("drain", DRAIN, DRAIN.maxMs + 10_000);
      const peers = await this.run.peers.call("watchResults", null, 60_000);
      const begin = this.start.reading;
      const delta = (a: number | null, b: number | null) => (a === null || b === null ? null : a - b);
      return {
        peers,
        readyMs: this.readyAt === null ? null : this.readyAt - this.t0,
        windowStartMs: this.start.at - this.t0,
        processes: end.each.map((cpu, k) => ({ cpuMs: cpu - (begin.each[k] ?? 0), peakRssMb: peaks[k] ?? 0 })),
        postgresCpuMs: delta(end.services.postgres, begin.services.postgres),
        redisCpuMs: delta(end.services.redis, begin.services.redis),
        peersCpuMs: end.peers - begin.peers,
        drainMs: waitedMs,
      };
    } finally {
      await this.stopTicker();
    }
  }

  private read(): Reading {
    return { each: this.meter.each().map((p) => p.cpuMs), services: serviceCpuMs(this.run.services), peers: this.peersMeter.read().cpuMs };
  }

  /** t, state answers/s, open QR sockets, webhooks/s, CPU % and RSS of the measured processes. */
  private progress(): void {
    const stats = this.run.latestStats();
    const now = Date.now();
    const { cpuMs, rssMb } = this.meter.read();
    if (!stats) return;
    const prev = this.previous;
    this.previous = { stats, cpuMs, at: now };
    if (!prev || stats.at <= prev.stats.at) return;
    const s = (stats.at - prev.stats.at) / 1000;
    const rate = (k: "polls" | "webhooks") => ((stats[k] - prev.stats[k]) / s).toFixed(1).padStart(8);
    const cpu = ((cpuMs - prev.cpuMs) / (now - prev.at)) * 100;
    process.stderr.write(
      `[${this.label}] t=${String(Math.round((now - this.t0) / 1000)).padStart(4)}s polls/s=${rate("polls")} sockets=${String(stats.openSockets).padStart(6)} ` +
        `webhooks/s=${rate("webhooks")} cpu=${cpu.toFixed(0).padStart(4)}% rss=${rssMb.toFixed(0).padStart(5)}MB\n`,
    );
  }
}
