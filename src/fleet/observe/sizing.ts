import type { FleetContext } from "../context.js";

/**
 * What the fleet asks of its daemons, said once at boot: room for the sessions it may need, and
 * the polls its sweep makes. The two grow differently. Sessions are needed by the instances that
 * are unlinked, plus room for a mass logout; a linked fleet needs few, however large. The sweep
 * polls every enabled instance each interval, linked or not.
 */

/**
 * Sessions one daemon process holds with every QR delivered in time, measured with `npm run bench`
 * on two cores (BENCH.md): the default of QRFLEET_CONCURRENCY.
 */
export const SESSIONS_PER_PROCESS = 10_000;

/**
 * getStateInstance polls one daemon makes a second, on top of its sessions: the sliced sweep spent
 * about 0.3 ms of CPU a poll at 100,000 instances (BENCH.md, "Steady state"), so 2,000 a second is
 * most of a core, with the rest left to the sessions a logout starts.
 */
export const SWEEP_POLLS_PER_PROCESS = 2_000;

export interface FleetCounts {
  enabled: number;
  /** Enabled instances unlinked now, and any instance with a session open. */
  inSession: number;
  /** Enabled instances whose provider webhook agrees with the last poll (hookState = lastState). */
  hooked: number;
}

export interface SizingSettings {
  concurrency: number;
  /** Session workers on the queue now, this process's included. */
  daemons: number;
  /** Share of the enabled fleet, in percent, that may log out at once beyond those unlinked now. */
  logoutHeadroomPercent: number;
  /** 0: no periodic sweep. */
  sweepIntervalMs: number;
  /** How often a hooked instance is polled (QRFLEET_SWEEP_INTERVAL_HOOKED_MS); 0: at the sweep interval. */
  hookedSweepIntervalMs: number;
}

export interface Sizing extends FleetCounts, SizingSettings {
  /** Sessions that may run at once: those needed now plus the logout headroom, at most one per enabled instance. */
  sessionsNeeded: number;
  sweepPollsPerSecond: number;
  /** Daemons the sessions and the sweep need together, at the per-process figures above. */
  daemonsNeeded: number;
  /** What to change, or null when the running daemons hold both. */
  advice: string | null;
}

export function planSizing(counts: FleetCounts, s: SizingSettings): Sizing {
  const headroom = Math.ceil((counts.enabled * s.logoutHeadroomPercent) / 100);
  const sessionsNeeded = Math.min(Math.max(counts.enabled, counts.inSession), counts.inSession + headroom);
  const hooked = Math.min(counts.hooked, counts.enabled);
  const perSecond = (n: number, ms: number) => (ms === 0 ? 0 : (n * 1000) / ms);
  const hookedMs = s.sweepIntervalMs === 0 || s.hookedSweepIntervalMs === 0 ? s.sweepIntervalMs : s.hookedSweepIntervalMs;
  const sweepPollsPerSecond = Math.ceil(perSecond(counts.enabled - hooked, s.sweepIntervalMs) + perSecond(hooked, hookedMs));
  const forSessions = Math.ceil(sessionsNeeded / SESSIONS_PER_PROCESS);
  const forSweep = Math.ceil(sweepPollsPerSecond / SWEEP_POLLS_PER_PROCESS);
  const daemonsNeeded = Math.max(1, forSessions, forSweep);
  const sizing = { ...counts, ...s, sessionsNeeded, sweepPollsPerSecond, daemonsNeeded, advice: null };
  return { ...sizing, advice: adviceFor(sizing, forSessions, forSweep) };
}

function adviceFor(z: Sizing, forSessions: number, forSweep: number): string | null {
  if (z.daemonsNeeded > z.daemons) {
    const each = Math.ceil(z.sessionsNeeded / z.daemonsNeeded);
    const reasons = [
      ...(forSessions > z.daemons ? [`${z.sessionsNeeded} sessions may run at once and one process holds about ${SESSIONS_PER_PROCESS}`] : []),
      ...(forSweep > z.daemons ? [`the sweep makes ${z.sweepPollsPerSecond} polls a second and one process makes about ${SWEEP_POLLS_PER_PROCESS} (or set QRFLEET_SWEEP_INTERVAL_MS to at least ${minimumInterval(z)})`] : []),
    ];
    const concurrency = each > z.concurrency ? ` with QRFLEET_CONCURRENCY=${each}` : "";
    return `run ${z.daemonsNeeded} daemon processes${concurrency}: ${reasons.join("; ")}`;
  }
  if (z.sessionsNeeded > z.concurrency * z.daemons) {
    return `set QRFLEET_CONCURRENCY to at least ${Math.ceil(z.sessionsNeeded / z.daemons)}: ${z.sessionsNeeded} sessions may run at once, and at most ${z.concurrency} run in this process`;
  }
  return null;
}

/** The sweep interval at which the running daemons make the sweep's polls, every instance counted at it. */
function minimumInterval(z: Sizing): number {
  return Math.ceil((z.enabled * 1000) / (z.daemons * SWEEP_POLLS_PER_PROCESS) / 1000) * 1000;
}

/** The boot log line: both needs, what the running daemons give, and the advice. */
export function describeSizing(z: Sizing): string {
  const sessions = `sessions: ${z.sessionsNeeded} may run at once (${z.inSession} unlinked or in session now + ${z.logoutHeadroomPercent}% of ${z.enabled} enabled for a mass logout), room for ${z.concurrency * z.daemons}`;
  const sweep = `sweep: ${z.sweepPollsPerSecond} polls a second (${z.enabled} enabled, ${z.hooked} hooked), room for about ${SWEEP_POLLS_PER_PROCESS * z.daemons}`;
  const enough = z.daemons === 1 ? "1 daemon holds both" : `${z.daemons} daemons hold both`;
  return `sizing: ${sessions}; ${sweep}; ${z.advice ?? enough}`;
}

async function countFleet(ctx: FleetContext): Promise<FleetCounts> {
  const { rows } = await ctx.sql.query<FleetCounts>(
    `SELECT count(*) FILTER (WHERE i.enabled)::int AS enabled,
            count(*) FILTER (WHERE (i.enabled AND i."unlinkedSince" IS NOT NULL)
              OR EXISTS (SELECT 1 FROM "QrSession" s WHERE s."instanceId" = i.id AND s.status IN ('queued', 'running')))::int AS "inSession",
            count(*) FILTER (WHERE i.enabled AND i."hookState" = i."lastState")::int AS hooked
       FROM "Instance" i`,
  );
  return rows[0]!;
}

/** Said at boot, so a fleet that outgrew its settings is told what to set before a QR is late. */
export async function checkSizing(ctx: FleetContext): Promise<Sizing> {
  const daemons = Math.max(1, await ctx.queues.session.getWorkersCount().catch(() => 1));
  const sizing = planSizing(await countFleet(ctx), {
    concurrency: ctx.config.QRFLEET_CONCURRENCY,
    daemons,
    logoutHeadroomPercent: ctx.config.QRFLEET_LOGOUT_HEADROOM_PERCENT,
    sweepIntervalMs: ctx.config.QRFLEET_SWEEP_INTERVAL_MS,
    hookedSweepIntervalMs: ctx.config.QRFLEET_SWEEP_INTERVAL_HOOKED_MS,
  });
  if (sizing.advice) ctx.log.warn(sizing, describeSizing(sizing));
  else ctx.log.info(sizing, describeSizing(sizing));
  return sizing;
}
