import type { ServerResponse } from "node:http";
import { setTimeout as sleep } from "node:timers/promises";
import type { FleetContext } from "../fleet/context.js";
import { isOpen, readLiveSnapshot, type LiveSnapshot } from "../fleet/triggers/live.js";
import { outcomeText } from "./live-page.js";

/** The live page's event stream: what changed in the followed session since the last poll, as server-sent events. */

const POLL_MS = 1_000;
const HEARTBEAT_MS = 15_000;

function changes(prev: LiveSnapshot | null, next: LiveSnapshot, basePath: string): Array<[string, Record<string, unknown>]> {
  const now = Date.now();
  const out: Array<[string, Record<string, unknown>]> = [];
  const moved = !prev || prev.status !== next.status || prev.attempt !== next.attempt || prev.expiresAt?.getTime() !== next.expiresAt?.getTime();
  if (moved) {
    const waiting = next.status === "queued" && next.attempt > 1;
    out.push(["status", {
      sessionId: next.id, status: next.status, attempt: next.attempt, maxAttempts: next.maxAttempts,
      expiresAt: next.expiresAt?.toISOString() ?? null, nextAttemptAt: waiting ? next.dueAt.toISOString() : null, now,
    }]);
  }
  if (next.sequence !== null && next.expiresAt && prev?.sequence !== next.sequence) {
    out.push(["qr", {
      sessionId: next.id, attempt: next.attempt, sequence: next.sequence,
      url: `${basePath}/qr/${next.sequence}.png?session=${next.id}`, expiresAt: next.expiresAt.toISOString(), now,
    }]);
  }
  if (!isOpen(next.status)) {
    out.push(["end", { sessionId: next.id, status: next.status, phone: next.phone, message: outcomeText(next) }]);
  }
  return out;
}

/** Polls PostgreSQL, so it works whichever process runs the session; stops with the client. */
export async function streamSession(ctx: FleetContext, res: ServerResponse, sessionId: string, basePath: string, signal: AbortSignal): Promise<void> {
  const write = (chunk: string) => void (res.writableEnded || res.destroyed || res.write(chunk));
  write("retry: 3000\n\n");
  const heartbeat = setInterval(() => write(": heartbeat\n\n"), HEARTBEAT_MS);
  let prev: LiveSnapshot | null = null;
  try {
    while (!signal.aborted) {
      const next = await readLiveSnapshot(ctx, sessionId, prev);
      if (!next) break;
      for (const [event, data] of changes(prev, next, basePath)) write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
      if (!isOpen(next.status)) break;
      prev = next;
      await sleep(POLL_MS, undefined, { signal });
    }
  } catch (err) {
    if (!signal.aborted) ctx.log.warn({ err, sessionId }, "live event stream stopped");
  } finally {
    clearInterval(heartbeat);
    res.end();
  }
}
