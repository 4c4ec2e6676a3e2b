import type { RedisClient } from "../../queues.js";
import type { FleetContext } from "../context.js";

/**
 * Instances added, removed or given another webhook token: told to this process at once
 * (`instances:changed` on ctx.events) and to every daemon over Redis pub/sub, so the provider
 * webhook's token cache (fleet/triggers/hook-auth.ts) of each reads them again before their next webhook,
 * whichever process (the CLI, the API of another daemon) made the change. Messages are lost only
 * while a subscriber is away from Redis, so when it is back (subscribed again) `instances:resync`
 * tells this process that any instance may have changed unseen; the cache's own lifetime
 * (QRFLEET_PROVIDER_HOOK_CACHE_MS) bounds anything else.
 */
export const instanceChangesChannel = (prefix: string) => `${prefix}:instances-changed`;

/** idInstances per message: an import of thousands is several messages of a few kB, not one of megabytes. */
const PER_MESSAGE = 1000;

export async function announceInstanceChanges(ctx: FleetContext, idInstances: readonly string[]): Promise<void> {
  if (idInstances.length === 0) return;
  ctx.events.emit("instances:changed", { idInstances: [...idInstances] });
  for (let i = 0; i < idInstances.length; i += PER_MESSAGE) {
    const message = JSON.stringify(idInstances.slice(i, i + PER_MESSAGE));
    await ctx.queues.connection.publish(instanceChangesChannel(ctx.queues.prefix), message).catch(() => 0);
  }
}

/** Emits every announced change on `ctx.events` of this process; returns a function that unsubscribes. */
export async function subscribeInstanceChanges(subscriber: RedisClient, ctx: FleetContext): Promise<() => Promise<void>> {
  const channel = instanceChangesChannel(ctx.queues.prefix);
  const listener = (ch: string, message: string) => {
    if (ch !== channel) return;
    const idInstances = parsedList(message);
    if (idInstances) ctx.events.emit("instances:changed", { idInstances });
  };
  // A SUBSCRIBE is answered in order, after the client's own re-subscription: from then on nothing is missed.
  const back = () =>
    void subscriber.subscribe(channel).then(
      () => ctx.events.emit("instances:resync"),
      () => undefined,
    );
  subscriber.on("message", listener);
  await subscriber.subscribe(channel);
  subscriber.on("ready", back);
  return async () => {
    subscriber.off("message", listener);
    subscriber.off("ready", back);
    await subscriber.unsubscribe(channel).catch(() => 0);
  };
}

/** Only this module publishes on the channel; anything else found there is ignored. */
function parsedList(message: string): string[] | null {
  try {
    const list: unknown = JSON.parse(message);
    return Array.isArray(list) ? list.map(String) : null;
  } catch {
    return null;
  }
}
