import { setTimeout as sleep } from "node:timers/promises";
import type { FleetContext } from "../context.js";

/**
 * QRFLEET_PROVIDER_HOST_RPS is a budget for the whole fleet; each daemon spends its share of it,
 * counted locally (no Redis round trip per call). The share follows how many daemons are alive
 * (fleet/provider/daemon-roster.ts), so a daemon that dies leaves its share to the others within seconds.
 */
export class HostBudget {
  private readonly next = new Map<string, number>();
  private daemons = 1;

  /** `fleetRps` calls a second to one apiUrl host, every daemon together; 0: no limit. */
  constructor(private readonly fleetRps: number) {}

  /** How many daemons share the budget now (the roster's count). */
  shareWith(daemons: number): void {
    this.daemons = Math.max(1, daemons);
  }

  /** This daemon's calls a second to one host; Infinity without a limit. */
  get rate(): number {
    return this.fleetRps > 0 ? this.fleetRps / this.daemons : Infinity;
  }

  /** When a call to `host` may go (nothing to wait for: now): evenly spaced turns, no burst to catch up with. */
  take(host: string): Promise<void> | undefined {
    if (this.fleetRps <= 0) return undefined;
    const now = Date.now();
    const at = Math.max(this.next.get(host) ?? now, now);
    this.next.set(host, at + 1000 / this.rate);
    return at > now ? sleep(at - now) : undefined;
  }
}

const budgets = new WeakMap<FleetContext, HostBudget>();

/** The provider host budget this context's calls spend (QRFLEET_PROVIDER_HOST_RPS, shared by the live daemons). */
export function hostBudgetOf(ctx: FleetContext): HostBudget {
  let budget = budgets.get(ctx);
  if (!budget) budgets.set(ctx, (budget = new HostBudget(ctx.config.QRFLEET_PROVIDER_HOST_RPS)));
  return budget;
}
