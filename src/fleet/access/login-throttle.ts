import type { FleetContext } from "../context.js";

/**
 * Failed logins (a wrong admin token as Bearer, Basic or the dashboard's form) counted per client
 * address in Redis, so every daemon counts together: after QRFLEET_LOGIN_FAILURES within
 * QRFLEET_LOGIN_WINDOW_MS the address waits out the window. With Redis away nothing is counted,
 * so an admin is not locked out by an outage.
 */

const keyOf = (ctx: FleetContext, client: string) => `${ctx.queues.prefix}:login-failures:${client}`;

/** How long `client` must wait before it may try again; 0: it may try now. */
export async function loginWaitMs(ctx: FleetContext, client: string): Promise<number> {
  const key = keyOf(ctx, client);
  const answer = await ctx.queues.connection.multi().get(key).pttl(key).exec().catch(() => null);
  const [count, ttl] = (answer ?? []).map(([, value]) => value) as [string | null, number];
  return Number(count ?? 0) >= ctx.config.QRFLEET_LOGIN_FAILURES ? Math.max(1, ttl ?? 1) : 0;
}

export async function recordLoginFailure(ctx: FleetContext, client: string): Promise<void> {
  const key = keyOf(ctx, client);
  await ctx.queues.connection.multi().set(key, "0", "PX", ctx.config.QRFLEET_LOGIN_WINDOW_MS, "NX").incr(key).exec().catch(() => undefined);
}
