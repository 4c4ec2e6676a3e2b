import type { LogCounts } from "./daemons.js";
import type { LogoutResult } from "./logouts.js";
import type { LatencySummary } from "./percentiles.js";
import { ratio, round, type CpuFigures } from "./phase-report.js";
import type { WatchMeasured } from "./watch-window.js";

/**
 * One watch phase's block of the JSON line. Everything is over the measured window (after the
 * warm-up) unless it says otherwise. Per-poll figures divide by the getStateInstance answers the
 * simulator sent in the window. In the floor's block "daemon" names the bare poller's process, so
 * the two blocks compare key by key.
 */
export interface WatchReport {
  windowS: number;
  polls: number;
  pollsPerSec: number | null;
  /** Per instance, its longest time without an answer while linked; p50/p99/max over instances. */
  uncheckedMs: LatencySummary;
  /** Instances linked through the window that were not polled in it; instances not polled at all in the phase. */
  unpolled: number;
  neverPolled: number;
  /** Each daemon's share of its own `qrfleet_sweep_polls_total` over the window; null if a daemon does not export it. */
  pollShares: number[] | null;
  logouts: LogoutResult;
  cpuMsPerPoll: CpuFigures;
  cpuMs: CpuFigures;
  /** Each measured process's peak (VmHWM). */
  peakRssMb: number[];
  /** QR frames the simulator sent after the logouts, and what reached the receiver (see the QR run's figures). */
  qr: { sent: number; delivered: number; superseded: number; lost: number; duplicated: number; invalidSignatures: number };
  jobsFailed: number;
  errorLines: number;
  detail: {
    readyMs: number | null;
    windowStartMs: number;
    drainMs: number;
    cpuMsPerProcess: number[];
    /** The simulator's own counts over the whole phase: answers, REST calls, TCP connections, QR sockets, webhooks. */
    simulator: WatchMeasured["peers"]["simulator"];
    peersCpuMs: number;
    peersLoopDelayP99Ms: number;
    logs: string[];
  };
}


export function watchReport(input: { measured: WatchMeasured; logs: LogCounts; logPaths: string[]; pollShares: number[] | null }): WatchReport {
  const { measured: m, logs } = input;
  const { polls, logouts, qr, simulator } = m.peers;
  const cpu = m.processes.reduce((sum, p) => sum + p.cpuMs, 0);
  const perPoll = (v: number | null) => (v === null || polls.windowAnswers === 0 ? null : round(v / polls.windowAnswers, 4));
  return {
    windowS: round(polls.windowMs / 1000, 1)!,
    polls: polls.windowAnswers,
    pollsPerSec: polls.pollsPerSec,
    uncheckedMs: polls.uncheckedMs,
    unpolled: polls.unpolled,
    neverPolled: polls.neverPolled,
    pollShares: input.pollShares,
    logouts,
    cpuMsPerPoll: { daemon: perPoll(cpu), postgres: perPoll(m.postgresCpuMs), redis: perPoll(m.redisCpuMs) },
    cpuMs: { daemon: round(cpu, 0), postgres: round(m.postgresCpuMs, 0), redis: round(m.redisCpuMs, 0) },
    peakRssMb: m.processes.map((p) => round(p.peakRssMb, 1)!),
    qr: { sent: qr.sent, delivered: qr.delivered, superseded: qr.superseded, lost: qr.lost, duplicated: qr.duplicated, invalidSignatures: qr.invalidSignatures },
    jobsFailed: logs.jobsFailed,
    errorLines: logs.errorLines,
    detail: {
      readyMs: m.readyMs,
      windowStartMs: m.windowStartMs,
      drainMs: m.drainMs,
      cpuMsPerProcess: m.processes.map((p) => round(p.cpuMs, 0)!),
      simulator,
      peersCpuMs: round(m.peersCpuMs, 0)!,
      peersLoopDelayP99Ms: m.peers.peersLoopDelayP99Ms,
      logs: input.logPaths,
    },
  };
}

/** daemon ÷ floor; null where either side has no figure. */
export function watchRatios(daemon: WatchReport, floor: WatchReport) {
  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
  return {
    cpuPerPoll: ratio(daemon.cpuMsPerPoll.daemon, floor.cpuMsPerPoll.daemon),
    postgresPerPoll: ratio(daemon.cpuMsPerPoll.postgres, floor.cpuMsPerPoll.postgres),
    pollsPerSec: ratio(daemon.pollsPerSec, floor.pollsPerSec),
    peakRss: ratio(sum(daemon.peakRssMb), sum(floor.peakRssMb)),
  };
}
