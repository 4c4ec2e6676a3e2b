import type { FleetContext } from "../context.js";

/**
 * The daemons alive now, as a sorted set in Redis: each one stamps its name every few seconds and
 * counts the names stamped recently. What is shared by count (the provider host budget) follows it.
 */

const STAMP_EVERY_MS = 5_000;
const ALIVE_FOR_MS = 3 * STAMP_EVERY_MS;

export interface Roster {
  /** Daemons alive at the last stamp, this one included. */
  readonly count: number;
  stop(): Promise<void>;
}

export async function joinRoster(ctx: FleetContext, name: string, onCount: (daemons: number) => void): Promise<Roster> {
  const key = `${ctx.queues.prefix}:daemons`;
  const redis = ctx.queues.connection;
  let count = 1;
  const stamp = async () => {
    const now = Date.now();
    const [, , [, n]] = (await redis
      .multi()
      .zadd(key, now, name)
      .zremrangebyscore(key, 0, now - ALIVE_FOR_MS)
      .zcard(key)
      .pexpire(key, ALIVE_FOR_MS * 4)
      .exec()) as [unknown, unknown, [unknown, number]];
    if (n !== count) onCount((count = n));
  };
  const safely = () => stamp().catch((err) => ctx.log.warn({ err: (err as Error).message }, "could not stamp the daemon roster in Redis"));
  await safely();
  onCount(count);
  const timer = setInterval(safely, STAMP_EVERY_MS);
  timer.unref();
  return {
    get count() {
      return count;
    },
    async stop() {
      clearInterval(timer);
      await redis.zrem(key, name).catch(() => undefined);
    },
  };
}
