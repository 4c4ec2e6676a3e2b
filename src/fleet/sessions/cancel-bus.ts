import { sessionJobId, type Queues, type RedisClient } from "../../queues.js";

/**
 * A job's AbortSignal can only be fired by the worker that holds it, so a cancel is broadcast
 * to every daemon over Redis pub/sub. PostgreSQL stays the truth: a run that misses the message
 * still finds its session ended at its next write and stops.
 */
export const cancelChannel = (prefix: string) => `${prefix}:session-cancel`;

export async function publishCancel(queues: Queues, sessionId: string, attempt: number): Promise<void> {
  await queues.connection.publish(cancelChannel(queues.prefix), sessionJobId(sessionId, attempt)).catch(() => 0);
}

/** Calls `onCancel(jobId)` for every broadcast cancel; returns a function that unsubscribes. */
export async function subscribeCancels(
  subscriber: RedisClient,
  prefix: string,
  onCancel: (jobId: string) => void,
): Promise<() => Promise<void>> {
  const channel = cancelChannel(prefix);
  const listener = (ch: string, message: string) => {
    if (ch === channel) onCancel(message);
  };
  subscriber.on("message", listener);
  await subscriber.subscribe(channel);
  return async () => {
    subscriber.off("message", listener);
    await subscriber.unsubscribe(channel).catch(() => 0);
  };
}
