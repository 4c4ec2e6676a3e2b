import Fastify, { type FastifyInstance } from "fastify";
import type { SessionStatus } from "../../src/db.js";
import type { FleetContext } from "../../src/fleet/context.js";
import { recordInstanceState } from "../../src/fleet/instances/instance-state.js";
import { addInstance, type InstanceView } from "../../src/fleet/instances/instances.js";
import { registerLivePage } from "../../src/http/live.js";
import { signLiveToken } from "../../src/notify/live-link.js";
import type { Script, Simulator } from "../../src/simulator/index.js";
import { afterAll, beforeAll } from "vitest";
import { startSimulator } from "../../src/simulator/index.js";
import { newIdInstance, newPrefix, newToken, testFleet, waitFor } from "../support/fleet.js";

/** Reads server-sent events from a fetch response until `done` says so (or the stream ends). */
export interface SseEvent {
  event: string;
  data: Record<string, unknown>;
}

export async function readEvents(res: Response, done: (events: SseEvent[]) => boolean, timeoutMs = 10_000): Promise<{ events: SseEvent[]; ended: boolean; text: string }> {
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  const events: SseEvent[] = [];
  let text = "";
  let ended = false;
  const timer = setTimeout(() => void reader.cancel(), timeoutMs);
  try {
    while (!done(events)) {
      const { value, done: finished } = await reader.read();
      if (finished) {
        ended = true;
        break;
      }
      text += decoder.decode(value, { stream: true });
      events.splice(0, events.length, ...parse(text));
    }
  } finally {
    clearTimeout(timer);
  }
  return { events, ended, text };
}

function parse(text: string): SseEvent[] {
  return text
    .split("\n\n")
    .slice(0, -1)
    .flatMap((block) => {
      const lines = block.split("\n");
      const event = lines.find((l) => l.startsWith("event: "))?.slice(7);
      const data = lines.find((l) => l.startsWith("data: "))?.slice(6);
      return event && data ? [{ event, data: JSON.parse(data) as Record<string, unknown> }] : [];
    });
}

/** A valid-looking token with one character of its MAC changed. */
export function tamper(token: string): string {
  const i = token.length - 6;
  const swapped = token[i] === "A" ? "B" : "A";
  return token.slice(0, i) + swapped + token.slice(i + 1);
}

const HOUR = 3_600_000;

/** A live link for the instance, signed as the daemon signs the ones it sends. */
export function liveLink(ctx: FleetContext, instanceId: string, ttlMs = HOUR): string {
  return signLiveToken(ctx.box.hmacKey(), instanceId, new Date(Date.now() + ttlMs));
}

/** A bare server with only the live page, so these tests do not depend on how src/http/app.ts mounts it. */
export async function startLiveServer(ctx: FleetContext): Promise<{ app: FastifyInstance; base: string }> {
  const app = Fastify({ logger: false });
  await registerLivePage(app, ctx);
  await app.listen({ port: 0, host: "127.0.0.1" });
  return { app, base: `http://127.0.0.1:${(app.server.address() as { port: number }).port}` };
}

/** An instance on the simulator with its live link. */
export async function liveInstance(ctx: FleetContext, sim: Simulator, script: Partial<Script> = { fate: "never" }, label?: string) {
  const idInstance = newIdInstance();
  const token = newToken();
  sim.define({ idInstance, token, ...script });
  const inst = await addInstance(ctx, { apiUrl: sim.url, idInstance, token, ...(label !== undefined && { label }) });
  return { inst, token, idInstance, link: liveLink(ctx, inst.id) };
}

export const sessionsOf = (ctx: FleetContext, instanceId: string) => ctx.db.qrSession.findMany({ where: { instanceId } });

/** The provider reports the phone linked, as the sweep or its webhook would record it. */
export async function markLinked(ctx: FleetContext, instance: InstanceView): Promise<void> {
  const row = await ctx.db.instance.findUniqueOrThrow({ where: { id: instance.id } });
  await recordInstanceState(ctx, { instance: row, state: "authorized", at: new Date() });
}

/** A session that ended long ago, as the fleet leaves one: its attempts all timed out. */
export async function endedSession(ctx: FleetContext, instanceId: string, status: SessionStatus = "timed_out", phone: string | null = null) {
  return ctx.db.qrSession.create({
    data: {
      instanceId, trigger: "sweep", status, attempt: 3, maxAttempts: 3, backoffBaseMs: 200, backoffMaxMs: 800,
      phone, startedAt: new Date(Date.now() - 600_000), endedAt: new Date(Date.now() - 300_000),
    },
  });
}

/** A POST as the live page's own script sends it from a browser; a header given as "" is left out. */
export function pagePost(base: string, path: string, body: unknown = {}, headers: Record<string, string> = {}) {
  const all = { "content-type": "application/json", accept: "application/json", origin: base, "sec-fetch-site": "same-origin", ...headers };
  return {
    method: "POST" as const,
    url: path,
    headers: Object.fromEntries(Object.entries(all).filter(([, v]) => v !== "")),
    payload: typeof body === "string" ? body : JSON.stringify(body),
  };
}

/**
 * A daemon's first sweep runs at its start and would start sessions for the instances a test
 * adds meanwhile; tests that count sessions add theirs once it has finished.
 */
export async function waitForStartSweep(ctx: FleetContext): Promise<void> {
  await waitFor("the daemon's start sweep to finish", async () => {
    const done = await ctx.queues.sweep.getJobs(["completed", "failed"]);
    return done.some((job) => job.name === "sweep");
  }, 10_000, 50);
}

export interface LiveRoutes {
  ctx: FleetContext & { close(): Promise<void> };
  sim: Simulator;
  app: FastifyInstance;
  base: string;
}

/** A fleet context without workers (sessions stay queued), a simulator and the live page, for one test file. */
export function useLiveRoutes(): LiveRoutes {
  const h = {} as LiveRoutes;
  beforeAll(async () => {
    h.ctx = testFleet({ QRFLEET_REDIS_PREFIX: newPrefix() });
    h.sim = await startSimulator();
    Object.assign(h, await startLiveServer(h.ctx));
  });
  afterAll(async () => {
    await h.app?.close();
    await h.sim?.close();
    await h.ctx?.close();
  });
  return h;
}
