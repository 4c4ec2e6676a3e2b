import type { FleetContext } from "../context.js";

/**
 * Dashboard sessions that were logged out, in Redis so every daemon refuses them at once; each is
 * kept until its cookie would have expired anyway.
 */

const keyOf = (ctx: FleetContext, session: string) => `${ctx.queues.prefix}:admin-logout:${session}`;

export async function recordLogout(ctx: FleetContext, session: string, cookieExpiresMs: number): Promise<void> {
  await ctx.queues.connection.set(keyOf(ctx, session), "1", "PX", Math.max(1, cookieExpiresMs - Date.now()));
}

/** True when the session was logged out, or when Redis cannot say (a logout may not be missed). */
export async function wasLoggedOut(ctx: FleetContext, session: string): Promise<boolean> {
  return (await ctx.queues.connection.exists(keyOf(ctx, session)).catch(() => 1)) !== 0;
}
