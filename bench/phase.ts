import { ProcessMeter, readServiceCounters, serviceCpuMs, type ServiceCounters } from "./meters.js";
import type { PeerStats, PeersResult } from "./peers.js";
import { sleepUntil, type Run } from "./run-context.js";
import { ADMIN_DATABASE_URL, REDIS_URL } from "./stores.js";

/**
 * The measured part of a phase, from t0 to the end of the drain: a progress line on stderr once
 * a second, and CPU readings of the measured processes, PostgreSQL, Redis and the peers at both ends.
 */

/** After the freeze, what was already sent may still arrive: wait for 2 s of quiet, 20 s at most. */
export const DRAIN = { quietMs: 2_000, maxMs: 20_000 };

export interface Measured {
  peers: PeersResult;
  /** The measured processes (daemons or the bare client): CPU and summed peak RSS. */
  cpuMs: number;
  peakRssMb: number;
  postgresCpuMs: number | null;
  redisCpuMs: number | null;
  peersCpuMs: number;
  /** PostgreSQL transactions and Redis commands during the window; null if a service could not be asked. */
  serviceWork: ServiceCounters | null;
  drainMs: number;
  /** When the measured processes were ready (daemons: /readyz 200), and the CPU they had used by then. */
  ready: { ms: number; cpuMs: number } | null;
  /** --kill-after: ms from the kill until every session had a socket open again (1 s resolution); null if never. */
  takeoverMs: number | null;
}

export class MeasuredWindow {
  readonly meter = new ProcessMeter();
  private readonly peersMeter = new ProcessMeter();
  private readonly services0;
  private readonly counters0: Promise<ServiceCounters | null>;
  private readonly peersCpu0: number;
  private readonly ticker: NodeJS.Timeout;
  private readonly stopTicker: () => Promise<void>;
  private previous: { stats: PeerStats; cpuMs: number; at: number } | undefined;
  private ready: Measured["ready"] = null;
  private kill: { at: number; dropped: boolean; backAt: number | null } | null = null;

  constructor(
    private readonly run: Run,
    private readonly label: string,
    readonly t0: number,
  ) {
    this.services0 = serviceCpuMs(run.services);
    this.counters0 = readServiceCounters(ADMIN_DATABASE_URL, REDIS_URL);
    this.peersMeter.add(run.peersPid);
    this.peersCpu0 = this.peersMeter.read().cpuMs;
    this.ticker = setInterval(() => this.progress(), 1000);
    // A phase that fails before its end must not leave the progress line ticking through the cleanup.
    this.stopTicker = run.teardown.add(`stop the ${label} progress line`, async () => clearInterval(this.ticker));
  }

  /**
   * Start-up (loading modules, connecting, migrating) is part of what a daemon costs, but in a
   * short run it dominates: this reading lets a reader take it out.
   */
  markReady(): void {
    this.ready ??= { ms: Date.now() - this.t0, cpuMs: Math.round(this.meter.read().cpuMs) };
  }

  /** A daemon was just killed: watch for its sessions' sockets to close and to be opened again elsewhere. */
  markKill(at: number): void {
    this.kill = { at, dropped: false, backAt: null };
  }

  /** Waits for the deadline (or for `failure`, a promise that rejects when a measured process dies), then freezes and drains. */
  async until(deadline: number, failure: Promise<never>): Promise<Measured> {
    try {
      await Promise.race([sleepUntil(deadline, this.run.signal), failure]);
      await this.run.peers.call("freeze", null);
      const { waitedMs } = await this.run.peers.call("drain", DRAIN, DRAIN.maxMs + 10_000);
      const peers = await this.run.peers.call("results", null);
      const own = this.meter.read();
      const services = serviceCpuMs(this.run.services);
      const [counters0, counters] = await Promise.all([this.counters0, readServiceCounters(ADMIN_DATABASE_URL, REDIS_URL)]);
      const delta = (a: number | null, b: number | null) => (a === null || b === null ? null : a - b);
      return {
        peers,
        cpuMs: own.cpuMs,
        peakRssMb: own.peakMb,
        postgresCpuMs: delta(services.postgres, this.services0.postgres),
        redisCpuMs: delta(services.redis, this.services0.redis),
        peersCpuMs: this.peersMeter.read().cpuMs - this.peersCpu0,
        serviceWork:
          counters0 && counters
            ? {
                postgresTransactions: counters.postgresTransactions - counters0.postgresTransactions,
                redisCommands: counters.redisCommands - counters0.redisCommands,
              }
            : null,
        drainMs: waitedMs,
        ready: this.ready,
        takeoverMs: this.kill?.backAt ? this.kill.backAt - this.kill.at : null,
      };
    } finally {
      await this.stopTicker();
    }
  }

  private watchTakeover(stats: PeerStats): void {
    const kill = this.kill;
    if (!kill || kill.backAt !== null || stats.at < kill.at) return;
    if (stats.openSockets < this.run.args.sessions) kill.dropped = true;
    else if (kill.dropped) kill.backAt = stats.at;
  }

  /** t, open sockets, QR sent/s, webhooks/s, emails/s, CPU % and RSS of the measured processes. */
  private progress(): void {
    const stats = this.run.latestStats();
    const now = Date.now();
    const { cpuMs, rssMb } = this.meter.read();
    if (!stats) return;
    this.watchTakeover(stats);
    const prev = this.previous;
    this.previous = { stats, cpuMs, at: now };
    if (!prev || stats.at <= prev.stats.at) return;
    const s = (stats.at - prev.stats.at) / 1000;
    const rate = (k: "sent" | "webhooks" | "emails") => ((stats[k] - prev.stats[k]) / s).toFixed(1).padStart(7);
    const cpu = ((cpuMs - prev.cpuMs) / (now - prev.at)) * 100;
    process.stderr.write(
      `[${this.label}] t=${String(Math.round((now - this.t0) / 1000)).padStart(4)}s sockets=${String(stats.openSockets).padStart(6)} ` +
        `qr/s=${rate("sent")} webhooks/s=${rate("webhooks")} emails/s=${rate("emails")} ` +
        `cpu=${cpu.toFixed(0).padStart(4)}% rss=${rssMb.toFixed(0).padStart(5)}MB\n`,
    );
  }
}
