import { randomBytes } from "node:crypto";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { z } from "zod";
import type { Instance } from "../db.js";
import type { FleetContext } from "../fleet/context.js";
import { currentQrPng, followSession, openLiveLink, readLiveView, startLiveSession, type LiveAccess } from "../fleet/triggers/live.js";
import { requestPairingCode, type PairingResult } from "../fleet/triggers/live-pairing.js";
import { toApiError } from "./errors.js";
import { parseInput } from "./input.js";
import { renderErrorPage, renderLivePage } from "./live-page.js";
import { streamSession } from "./live-stream.js";

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
  already_linked: 409, rate_limited: 429, wrong_number: 409, pairing_refused: 409, invalid_token: 502, provider_error: 502,
};
const UNAVAILABLE: Problem = { status: 503, code: "unavailable", title: "Try again in a minute", message: "The live page cannot reach its database or queue right now." };
const NO_SESSION: Problem = {
  status: 404, code: "no_session", title: "No session",
  message: "no session is running for this instance; open the live page and press its button to start one",
};
const CROSS_SITE: Problem = { status: 403, code: "cross_site", title: "", message: "this action is accepted only from the live page itself" };
const NOT_JSON: Problem = {
  status: 415, code: "unsupported_media_type", title: "", message: "send the request as JSON (content-type: application/json), as the live page does",
};

const pairBody = z.object({
  phoneNumber: z
    .union([z.string().max(40), z.number()])
    .transform((v) => String(v).replace(/[\s().+-]/g, ""))
    .pipe(z.string().regex(/^\d{7,15}$/, "must be 7 to 15 digits in international form, e.g. 79001234567")),
});
/** The Start button says nothing but "start": any field is a client that is not the page. */
const startBody = z.object({}).strict();

type TokenRoute = { Params: { token: string }; Querystring: { session?: string } };
type QrRoute = { Params: { token: string; sequence: string }; Querystring: { session?: string } };
type Access = { instance: Instance; expiresAt: Date };

/**
 * The live QR page: `/live/<signed token>`, no login. Every
 * GET and HEAD only reads (mail filters open each link of an email before the person does); a
 * session starts only from the page's Start button, a POST that another site cannot forge.
 */
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
    const ownPageOrigins = new Set([new URL(ctx.config.QRFLEET_PUBLIC_URL).origin]);
    // Runs before the body is read: a forged post costs no parsing and no lookup.
    const fromThisPage = async (req: FastifyRequest, reply: FastifyReply) => {
      const problem = foreignPostProblem(req, ownPageOrigins);
      if (problem) return fail(req, reply, problem, true);
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

    // HEAD is answered by the same read-only handler, without the body.
    scope.get<TokenRoute>("/live/:token", async (req, reply) => {
      const access = await open(req, reply);
      if (!access) return reply;
      const { instance } = access;
      const view = await readLiveView(ctx, instance);
      return reply.type("text/html; charset=utf-8").send(
        renderLivePage({
          nonce: nonceOf(req), label: instance.label ?? `Instance ${instance.idInstance}`, idInstance: instance.idInstance,
          linkExpiresAt: access.expiresAt, view,
        }),
      );
    });

    scope.post<{ Params: { token: string } }>("/live/:token/sessions", { bodyLimit: 1024, onRequest: fromThisPage }, async (req, reply) => {
      const access = await open(req, reply, true);
      if (!access) return reply;
      parseInput(startBody, req.body);
      const result = await startLiveSession(ctx, access.instance);
      if ("refused" in result) return fail(req, reply, { status: 409, code: result.refused, title: "", message: result.message }, true);
      return reply.status(result.created ? 201 : 200).send(result);
    });

    scope.head<TokenRoute>("/live/:token/events", async (req, reply) => {
      const access = await open(req, reply, true);
      if (!access) return reply;
      return reply.type("text/event-stream; charset=utf-8").send();
    });

    scope.get<TokenRoute>("/live/:token/events", { exposeHeadRoute: false }, async (req, reply) => {
      const access = await open(req, reply, true);
      if (!access) return reply;
      const sessionId = await followSession(ctx, access.instance, req.query.session);
      if (!sessionId) return fail(req, reply, NO_SESSION, true);
      const lifetimeMs = Math.min(STREAM_MAX_MS, access.expiresAt.getTime() - Date.now());
      const clientGone = new AbortController();
      reply.raw.on("close", () => clientGone.abort());
      reply.hijack();
      reply.raw.writeHead(200, { ...definedHeaders(reply), "content-type": "text/event-stream; charset=utf-8", "x-accel-buffering": "no" });
      const basePath = (req.url.split("?")[0] ?? "").replace(/\/events$/, "");
      const signal = AbortSignal.any([clientGone.signal, closing.signal, AbortSignal.timeout(Math.max(lifetimeMs, 0))]);
      await streamSession(ctx, reply.raw, sessionId, basePath, signal);
    });

    scope.get<QrRoute>("/live/:token/qr/:sequence(^\\d{1,9}).png", async (req, reply) => {
      const access = await open(req, reply, true);
      if (!access) return reply;
      const png = await currentQrPng(ctx, access.instance.id, Number(req.params.sequence), req.query.session);
      if (!png) return fail(req, reply, { ...GONE, title: "Gone", message: "this QR code is no longer current" }, true);
      return reply.type("image/png").send(png);
    });

    scope.post<{ Params: { token: string } }>("/live/:token/pair", { bodyLimit: 1024, onRequest: fromThisPage }, async (req, reply) => {
      const access = await open(req, reply, true);
      if (!access) return reply;
      const { phoneNumber } = parseInput(pairBody, req.body);
      const result = await requestPairingCode(ctx, access.instance, phoneNumber);
      if ("code" in result) return reply.send({ code: result.code });
      return fail(req, reply, { status: PAIRING_STATUS[result.refused], code: result.refused, title: "", message: result.message }, true);
    });
  });
}

/**
 * Why a POST is not the page's own script, or null. A browser says where a request comes from
 * (Sec-Fetch-Site, else Origin), and an HTML form cannot send application/json: another site would
 * need a CORS preflight, which this server never grants. A client that sends neither header is
 * not a browser, so it carries no one's link unknowingly.
 */
function foreignPostProblem(req: FastifyRequest, ownPageOrigins: ReadonlySet<string>): Problem | null {
  if (isCrossSite(req, ownPageOrigins)) return CROSS_SITE;
  const type = (req.headers["content-type"] ?? "").split(";")[0]!.trim().toLowerCase();
  return type === "application/json" ? null : NOT_JSON;
}

/** Whether the browser says the request comes from another site (Sec-Fetch-Site, else Origin). */
export function isCrossSite(req: FastifyRequest, ownOrigins: ReadonlySet<string>): boolean {
  const site = req.headers["sec-fetch-site"];
  if (site !== undefined) return site !== "same-origin";
  const origin = req.headers.origin;
  return origin !== undefined && origin !== `${req.protocol}://${req.host}` && !ownOrigins.has(origin);
}

/** Headers of every HTML page this server renders: scripts and styles only under the response's nonce. */
export function securityHeaders(nonce: string): Record<string, string> {
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

export function wantsJson(req: FastifyRequest): boolean {
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
