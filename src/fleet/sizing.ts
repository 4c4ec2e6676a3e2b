import type { FleetContext } from "./context.js";

/**
 * Sessions one daemon process holds with every QR delivered in time, measured with `npm run bench`
 * on two cores (BENCH.md): the default of QRFLEET_CONCURRENCY.
 */
export const SESSIONS_PER_PROCESS = 10_000;

export interface Sizing {
  enabledInstances: number;
  concurrency: number;
  /** Session workers on the queue now, this process's included. */
  daemons: number;
  /** What to change, or null when one process at this concurrency can run every instance at once. */
  advice: string | null;
}

export function sizingAdvice(enabledInstances: number, concurrency: number, daemons = 1): string | null {
  if (enabledInstances <= concurrency * daemons) return null;
  const processes = Math.ceil(enabledInstances / SESSIONS_PER_PROCESS);
  if (processes <= daemons) {
    return `set QRFLEET_CONCURRENCY to at least ${Math.ceil(enabledInstances / daemons)}: ${enabledInstances} instances are enabled, and at most ${concurrency} sessions run at once in this process`;
  }
  const each = Math.ceil(enabledInstances / processes);
  return `run ${processes} daemon processes with QRFLEET_CONCURRENCY=${each}: ${enabledInstances} instances are enabled and one process holds about ${SESSIONS_PER_PROCESS} sessions`;
}

/** Said at boot, so a fleet that outgrew its settings is told what to set before a QR is late. */
export async function checkSizing(ctx: FleetContext): Promise<Sizing> {
  const enabledInstances = await ctx.db.instance.count({ where: { enabled: true } });
  const concurrency = ctx.config.QRFLEET_CONCURRENCY;
  const daemons = Math.max(1, await ctx.queues.session.getWorkersCount().catch(() => 1));
  const advice = sizingAdvice(enabledInstances, concurrency, daemons);
  const line = { enabledInstances, concurrency, daemons };
  if (advice) ctx.log.warn(line, `sizing: ${advice}`);
  else ctx.log.info(line, "sizing: every enabled instance can have a session running at once");
  return { enabledInstances, concurrency, daemons, advice };
}
