import { randomBytes } from "node:crypto";
import type { ServerResponse } from "node:http";
import { setTimeout as sleep } from "node:timers/promises";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { z } from "zod";
import type { Instance } from "../db.js";
import type { FleetContext } from "../fleet/context.js";
import {
  currentQrPng, followSession, isOpen, openLiveLink, readLiveSnapshot, requestPairingCode,
  type LiveAccess, type LiveSnapshot, type PairingResult,
} from "../fleet/live.js";
import { enqueueSession } from "../fleet/sessions.js";
import { toApiError } from "./errors.js";
import { parseInput } from "./input.js";
import { outcomeText, renderErrorPage, renderLivePage } from "./live-page.js";

const POLL_MS = 1_000;
const HEARTBEAT_MS = 15_000;
// A forgotten tab must not hold a connection and a poll loop forever; EventSource simply reconnects.
const STREAM_MAX_MS = 15 * 60_000;

interface Problem {
  status: number;
  code: string;
  title: string;
  message: string;
}

const INVALID_LINK: Problem = {
  status: 403, code: "link_invalid", title: "This link is not valid",
  message: "The link is damaged or was not issued by this server. Copy the whole link from the message you received, or ask for a new one.",
};
const GONE: Problem = { status: 404, code: "not_found", title: "Instance not found", message: "This WhatsApp instance no longer exists in the fleet." };
const LINK_PROBLEMS: Record<Extract<LiveAccess, { refused: string }>["refused"], Problem> = {
  malformed: INVALID_LINK,
  tampered: INVALID_LINK,
  expired: {
    status: 410, code: "link_expired", title: "This link has expired",
    message: "Live links work for a limited time. The next QR message brings a fresh link, or ask an admin for one.",
  },
  gone: GONE,
};
const PAIRING_STATUS: Record<Extract<PairingResult, { refused: string }>["refused"], number> = {
  rate_limited: 429, wrong_number: 409, pairing_refused: 409, invalid_token: 502, provider_error: 502,
};
const UNAVAILABLE: Problem = { status: 503, code: "unavailable", title: "Try again in a minute", message: "The live page cannot reach its database or queue right now." };

const pairBody = z.object({
  phoneNumber: z
    .union([z.string().max(40), z.number()])
    .transform((v) => String(v).replace(/[\s().+-]/g, ""))
    .pipe(z.string().regex(/^\d{7,15}$/, "must be 7 to 15 digits in international form, e.g. 79001234567")),
});

type TokenRoute = { Params: { token: string }; Querystring: { session?: string } };
type QrRoute = { Params: { token: string; sequence: string }; Querystring: { session?: string } };
type Access = { instance: Instance; expiresAt: Date };

/** The live QR page: `/live/<signed token>`, no login. See DESIGN.md, "What operators get". */
export async function registerLivePage(app: FastifyInstance, ctx: FleetContext): Promise<void> {
  await app.register(async (scope) => {
    const nonces = new WeakMap<FastifyRequest, string>();
    const closing = new AbortController();
    const nonceOf = (req: FastifyRequest) => nonces.get(req) ?? "";
    const fail = (req: FastifyRequest, reply: FastifyReply, p: Problem, json = false) => {
      reply.status(p.status);
      if (json || wantsJson(req)) return reply.send({ error: { code: p.code, message: p.message } });
      return reply.type("text/html; charset=utf-8").send(renderErrorPage({ nonce: nonceOf(req), ...p }));
    };
    const open = async (req: FastifyRequest<{ Params: { token: string } }>, reply: FastifyReply, json = false) => {
      const access = await checkAccess(ctx, req.params.token);
      if ("instance" in access) return access;
      await fail(req, reply, access, json);
      return null;
    };

    scope.addHook("onRequest", async (req, reply) => {
      const nonce = randomBytes(16).toString("base64");
      nonces.set(req, nonce);
      reply.headers(securityHeaders(nonce));
    });
    scope.addHook("preClose", async () => closing.abort());
    scope.setErrorHandler((err, req, reply) => {
      const e = toApiError(err);
      if (e.status >= 500) req.log.error({ err, route: req.routeOptions.url }, "live page request failed");
      const json = req.routeOptions.url !== "/live/:token";
      return fail(req, reply, e.status >= 500 ? UNAVAILABLE : { ...e, title: "Bad request" }, json);
    });

    // No HEAD twin: a link checker's HEAD must not start a session.
    scope.get<TokenRoute>("/live/:token", { exposeHeadRoute: false }, async (req, reply) => {
      const access = await open(req, reply);
      if (!access) return reply;
      const { session } = await enqueueSession(ctx, access.instance, "live");
      const { instance } = access;
      return reply.type("text/html; charset=utf-8").send(
        renderLivePage({
          nonce: nonceOf(req), label: instance.label ?? `Instance ${instance.idInstance}`, idInstance: instance.idInstance,
          sessionId: session.id, attempt: session.attempt, maxAttempts: session.maxAttempts, linkExpiresAt: access.expiresAt,
        }),
      );
    });

    scope.get<TokenRoute>("/live/:token/events", { exposeHeadRoute: false }, async (req, reply) => {
      const access = await open(req, reply, true);
      if (!access) return reply;
      const sessionId = await followSession(ctx, access.instance, req.query.session);
      const lifetimeMs = Math.min(STREAM_MAX_MS, access.expiresAt.getTime() - Date.now());
      const clientGone = new AbortController();
      reply.raw.on("close", () => clientGone.abort());
      reply.hijack();
      reply.raw.writeHead(200, { ...definedHeaders(reply), "content-type": "text/event-stream; charset=utf-8", "x-accel-buffering": "no" });
      const basePath = (req.url.split("?")[0] ?? "").replace(/\/events$/, "");
      const signal = AbortSignal.any([clientGone.signal, closing.signal, AbortSignal.timeout(Math.max(lifetimeMs, 0))]);
      await streamSession(ctx, reply.raw, sessionId, basePath, signal);
    });

    scope.get<QrRoute>("/live/:token/qr/:sequence(^\\d{1,9}).png", { exposeHeadRoute: false }, async (req, reply) => {
      const access = await open(req, reply, true);
      if (!access) return reply;
      const png = await currentQrPng(ctx, access.instance.id, Number(req.params.sequence), req.query.session);
      if (!png) return fail(req, reply, { ...GONE, title: "Gone", message: "this QR code is no longer current" }, true);
      return reply.type("image/png").send(png);
    });

    scope.post<{ Params: { token: string } }>("/live/:token/pair", { bodyLimit: 1024 }, async (req, reply) => {
      const access = await open(req, reply, true);
      if (!access) return reply;
      const { phoneNumber } = parseInput(pairBody, req.body);
      const result = await requestPairingCode(ctx, access.instance, phoneNumber);
      if ("code" in result) return reply.send({ code: result.code });
      return fail(req, reply, { status: PAIRING_STATUS[result.refused], code: result.refused, title: "", message: result.message }, true);
    });
  });
}

function securityHeaders(nonce: string): Record<string, string> {
  const csp = [
    "default-src 'self'", `script-src 'nonce-${nonce}'`, `style-src 'nonce-${nonce}'`, "img-src 'self' blob: data:",
    "connect-src 'self'", "object-src 'none'", "base-uri 'none'", "form-action 'self'", "frame-ancestors 'none'",
  ].join("; ");
  return {
    "content-security-policy": csp,
    // The token is in the URL: no Referer may carry it to another site.
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "cache-control": "no-store",
  };
}

function wantsJson(req: FastifyRequest): boolean {
  const accept = req.headers.accept ?? "";
  return accept.includes("application/json") && !accept.includes("text/html");
}

function definedHeaders(reply: FastifyReply): Record<string, string | number | string[]> {
  return Object.fromEntries(Object.entries(reply.getHeaders()).filter(([, v]) => v !== undefined)) as Record<string, string | number | string[]>;
}

/** The instance the link opens, or the problem a page or JSON reply explains. */
async function checkAccess(ctx: FleetContext, token: string): Promise<Access | Problem> {
  const access = await openLiveLink(ctx, token);
  return "refused" in access ? LINK_PROBLEMS[access.refused] : access;
}

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
async function streamSession(ctx: FleetContext, res: ServerResponse, sessionId: string, basePath: string, signal: AbortSignal): Promise<void> {
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
