import type { BenchArgs } from "./args.js";
import type { LogCounts } from "./daemons.js";
import type { LatencySummary } from "./percentiles.js";
import type { Measured } from "./phase.js";

/**
 * One phase's block of the JSON line. In the floor's block "daemon" names the bare client's
 * process, so the two blocks compare key by key. Per-QR figures divide by delivered QR: the
 * cost of a QR that reached its operators, so a process that loses work does not look cheaper.
 */
export interface PhaseReport {
  sent: number;
  delivered: number;
  lost: number;
  superseded: number;
  duplicated: number;
  invalidSignatures: number;
  qrPerSec: number;
  latencyMs: LatencySummary;
  emails: number;
  emailDuplicates: number;
  emailP99Ms: number | null;
  socketsOpenMax: number;
  /** ms from t0 until every session had its socket open at once; null if that never happened. */
  socketsOpenMs: number | null;
  cpuMsPerQr: CpuFigures;
  cpuMs: CpuFigures;
  /** PostgreSQL transactions and Redis commands per delivered QR, start-up included. */
  servicePerQr: { postgresTransactions: number | null; redisCommands: number | null };
  /** Sum of the measured processes' peaks (VmHWM). */
  peakRssMb: number;
  jobsFailed: number;
  errorLines: number;
  /** Seconds after t0 when the first daemon got SIGKILL (--kill-after). */
  killedAfter?: number;
  /** What helps judge the figures above: unmatched traffic, the drain, and how loaded the harness itself was. */
  detail: {
    unmatchedWebhooks: number;
    otherEvents: Record<string, number>;
    emailUnmatched: number;
    /** Digests and fleet incidents (`--email-mode digest`). */
    emailsAboutTheFleet: number;
    emailP50Ms: number | null;
    drainMs: number;
    /** ms from t0 until the measured processes were ready, and their CPU ms by then (start-up cost). */
    readyMs: number | null;
    startupCpuMs: number | null;
    /** --kill-after: ms from the kill until every session had a socket again (1 s resolution); null: not within the run. */
    takeoverMs?: number | null;
    peersCpuMs: number;
    peersLoopDelayP99Ms: number;
    logs: string[];
  };
}

/** CPU of the measured processes, PostgreSQL and Redis; null where a figure could not be read. */
export interface CpuFigures {
  daemon: number | null;
  postgres: number | null;
  redis: number | null;
}

export const round = (v: number | null, digits: number) => (v === null ? null : Math.round(v * 10 ** digits) / 10 ** digits);

/** a ÷ b to two digits; null where either side has no figure (or b is 0). */
export const ratio = (a: number | null, b: number | null) => (a === null || b === null || b === 0 ? null : round(a / b, 2));

export function phaseReport(input: {
  args: BenchArgs;
  t0: number;
  measured: Measured;
  logs: LogCounts;
  logPaths: string[];
  killedAfter?: number;
}): PhaseReport {
  const { args, t0, measured: m, logs } = input;
  const p = m.peers;
  const perQr = (cpu: number | null) => (cpu === null || p.delivered === 0 ? null : round(cpu / p.delivered, 3));
  return {
    sent: p.sent,
    delivered: p.delivered,
    lost: p.lost,
    superseded: p.superseded,
    duplicated: p.duplicated,
    invalidSignatures: p.invalidSignatures,
    qrPerSec: round(p.delivered / args.seconds, 1)!,
    latencyMs: p.latencyMs,
    emails: p.emails,
    emailDuplicates: p.emailDuplicates,
    emailP99Ms: p.emailLatencyMs.p99,
    socketsOpenMax: p.socketsOpenMax,
    socketsOpenMs: p.allOpenAt === null ? null : p.allOpenAt - t0,
    cpuMsPerQr: { daemon: perQr(m.cpuMs), postgres: perQr(m.postgresCpuMs), redis: perQr(m.redisCpuMs) },
    cpuMs: { daemon: round(m.cpuMs, 0), postgres: round(m.postgresCpuMs, 0), redis: round(m.redisCpuMs, 0) },
    servicePerQr: {
      postgresTransactions: perQr(m.serviceWork?.postgresTransactions ?? null),
      redisCommands: perQr(m.serviceWork?.redisCommands ?? null),
    },
    peakRssMb: round(m.peakRssMb, 1)!,
    jobsFailed: logs.jobsFailed,
    errorLines: logs.errorLines,
    ...(input.killedAfter !== undefined && { killedAfter: round(input.killedAfter, 1)! }),
    detail: {
      unmatchedWebhooks: p.unmatched,
      otherEvents: p.otherEvents,
      emailUnmatched: p.emailUnmatched,
      emailsAboutTheFleet: p.emailsAboutTheFleet,
      emailP50Ms: p.emailLatencyMs.p50,
      drainMs: m.drainMs,
      readyMs: m.ready?.ms ?? null,
      startupCpuMs: m.ready?.cpuMs ?? null,
      ...(input.killedAfter !== undefined && { takeoverMs: m.takeoverMs }),
      peersCpuMs: round(m.peersCpuMs, 0)!,
      peersLoopDelayP99Ms: p.peersLoopDelayP99Ms,
      logs: input.logPaths,
    },
  };
}

/** daemon ÷ floor; null where either side has no figure. */
export function ratios(daemon: PhaseReport, floor: PhaseReport) {
  return {
    cpuPerQr: ratio(daemon.cpuMsPerQr.daemon, floor.cpuMsPerQr.daemon),
    peakRss: ratio(daemon.peakRssMb, floor.peakRssMb),
    delivered: ratio(daemon.delivered, floor.delivered),
    p99: ratio(daemon.latencyMs.p99, floor.latencyMs.p99),
  };
}
