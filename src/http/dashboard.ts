import { randomBytes } from "node:crypto";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { z } from "zod";
import type { FleetContext } from "../fleet/context.js";
import { dashboardPage, NEVER_CHECKED, troubledChannels, type DashboardFilter, type DashboardRow } from "../fleet/observe/dashboard.js";
import { listOperatorChannels, setChannelMode } from "../fleet/operators/operators.js";
import { enqueueSession } from "../fleet/sessions/sessions.js";
import { fleetStatus } from "../fleet/observe/status.js";
import { plainText } from "../fleet/validate.js";
import { liveUrl, signLiveToken } from "../notify/live-link.js";
import { POLICY_STATES } from "../state-policies.js";
import { ADMIN_COOKIE_TTL_S, AdminLogins, setCookieHeader } from "./admin-cookie.js";
import { SecretCheck } from "./auth.js";
import { renderDashboard, renderLoginPage, renderMessagePage } from "./dashboard-page.js";
import { toApiError } from "./errors.js";
import { idParams, parseInput } from "./input.js";
import { isCrossSite, securityHeaders, wantsJson } from "./live.js";

const FILTER_STATES = [...POLICY_STATES, NEVER_CHECKED] as const;
/** What a browser sends from the filter form: empty fields mean "any". */
const filterQuery = z
  .object({
    state: z.union([z.literal(""), z.enum(FILTER_STATES, `state must be one of ${FILTER_STATES.join(", ")}`)]).optional(),
    q: plainText(200).optional(),
    alert: z.enum(["", "1", "on", "true"], "alert must be 1 or left out").optional(),
    unlinked_since: z.union([z.literal(""), z.iso.datetime({ offset: true, message: "unlinked_since must be a time such as 2026-12-07T10:00:00Z" })]).optional(),
    page: z.string().regex(/^\d{1,6}$/, "page must be a whole number from 1").transform(Number).pipe(z.number().min(1, "page must be 1 or more")).optional(),
  })
  .strict();
const loginBody = z.object({ token: z.string().max(1000, "the admin token is not that long") }).strict();
const modeBody = z.object({ mode: z.string().max(20) }).strict();
/** The Start button sends nothing; a field means a client that is not the dashboard. */
const startBody = z.object({}).strict();

type Problem = { status: number; title: string; code: string; message: string };
const CROSS_SITE: Problem = { status: 403, title: "Refused", code: "cross_site", message: "this action is accepted only from the dashboard itself" };
const LOGGED_OUT: Problem = { status: 401, title: "Log in first", code: "unauthorized", message: "log in at /admin, or send Authorization: Bearer <admin token>" };

/**
 * The fleet dashboard at /admin: one server-rendered page an operator opens in the morning. GETs
 * only read; starting a session is a same-origin POST. See README, "Dashboard".
 */
export async function registerDashboard(app: FastifyInstance, ctx: FleetContext): Promise<void> {
  const adminToken = ctx.config.QRFLEET_ADMIN_TOKEN;
  const logins = new AdminLogins(ctx);
  const loginCheck = new SecretCheck(ctx, adminToken);
  const ownOrigins = new Set([new URL(ctx.config.QRFLEET_PUBLIC_URL).origin]);
  await app.register(async (scope) => {
    const nonces = new WeakMap<FastifyRequest, string>();
    const nonceOf = (req: FastifyRequest) => nonces.get(req) ?? "";
    const fail = (req: FastifyRequest, reply: FastifyReply, p: Problem) => {
      reply.status(p.status);
      if (answersJson(req)) return reply.send({ error: { code: p.code, message: p.message } });
      return reply.type("text/html; charset=utf-8").send(renderMessagePage(nonceOf(req), p.status, p.title, p.message));
    };
    const html = (reply: FastifyReply, body: string) => reply.type("text/html; charset=utf-8").send(body);
    // Both run before the body is read: a forged or anonymous post costs no parsing and no lookup.
    const sameSiteOnly = async (req: FastifyRequest, reply: FastifyReply) => {
      if (isCrossSite(req, ownOrigins)) return fail(req, reply, CROSS_SITE);
    };
    const adminOnly = async (req: FastifyRequest, reply: FastifyReply) => {
      if (!(await logins.isAdmin(req))) return fail(req, reply, LOGGED_OUT);
    };

    scope.addContentTypeParser("application/x-www-form-urlencoded", { parseAs: "string", bodyLimit: 4096 }, (_req, body, done) =>
      done(null, Object.fromEntries(new URLSearchParams(body as string))),
    );
    scope.addHook("onRequest", async (req, reply) => {
      const nonce = randomBytes(16).toString("base64");
      nonces.set(req, nonce);
      reply.headers(securityHeaders(nonce));
    });
    scope.setErrorHandler((err, req, reply) => {
      const e = toApiError(err);
      if (e.status >= 500) req.log.error({ err, route: req.routeOptions.url }, "dashboard request failed");
      const title = e.status >= 500 ? "Something went wrong" : e.status === 404 ? "Not found" : "Bad request";
      return fail(req, reply, { ...e, title });
    });

    scope.get<{ Querystring: Record<string, unknown> }>("/admin", async (req, reply) => {
      if (!(await logins.isAdmin(req))) return html(reply, renderLoginPage(nonceOf(req)));
      const filter = toFilter(parseInput(filterQuery, req.query));
      const [status, page, channels, operators] = await Promise.all([
        fleetStatus(ctx), dashboardPage(ctx, filter), troubledChannels(ctx), listOperatorChannels(ctx),
      ]);
      const now = new Date();
      return html(reply, renderDashboard({ nonce: nonceOf(req), status, filter, page, channels, operators, liveLinks: liveLinks(ctx, page.rows, now), now }));
    });

    scope.post("/admin/login", { onRequest: sameSiteOnly }, async (req, reply) => {
      const { token } = parseInput(loginBody, req.body);
      const result = await loginCheck.check(req, token);
      if (typeof result === "number") {
        reply.header("retry-after", String(Math.ceil(result / 1000)));
        return html(reply.status(429), renderLoginPage(nonceOf(req), `Too many wrong tokens from this address. Try again in ${Math.ceil(result / 60_000)} min.`));
      }
      if (result === "wrong") return html(reply.status(401), renderLoginPage(nonceOf(req), "Wrong admin token. Check it and try again."));
      reply.header("set-cookie", setCookieHeader(req, ctx.config.QRFLEET_PUBLIC_URL, logins.issue(), ADMIN_COOKIE_TTL_S));
      return reply.redirect("/admin", 303);
    });

    scope.post("/admin/logout", { onRequest: sameSiteOnly }, async (req, reply) => {
      await logins.logOut(req);
      reply.header("set-cookie", setCookieHeader(req, ctx.config.QRFLEET_PUBLIC_URL, "", 0));
      return reply.redirect("/admin", 303);
    });

    scope.post<{ Params: { id: string } }>("/admin/channels/:id/mode", { bodyLimit: 1024, onRequest: [sameSiteOnly, adminOnly] }, async (req, reply) => {
      const { id } = parseInput(idParams, req.params);
      const { mode } = parseInput(modeBody, req.body);
      const channel = await setChannelMode(ctx, id, mode);
      if (answersJson(req)) return reply.send(channel);
      return reply.redirect("/admin#operators-heading", 303);
    });

    scope.post<{ Params: { id: string } }>("/admin/instances/:id/start", { bodyLimit: 1024, onRequest: [sameSiteOnly, adminOnly] }, async (req, reply) => {
      const { id } = parseInput(idParams, req.params);
      parseInput(startBody, req.body);
      const { session, created } = await enqueueSession(ctx, id, "admin");
      reply.status(created ? 201 : 200);
      if (answersJson(req)) return reply.send({ session, created });
      const name = session.label ?? session.idInstance;
      const message = created
        ? `Session ${session.id} queued for ${name}: a worker picks it up and sends the QR to the instance's operators.`
        : `A session is already open for ${name} (${session.status}, attempt ${session.attempt}); nothing new was started.`;
      return html(reply, renderMessagePage(nonceOf(req), reply.statusCode, created ? "Session queued" : "Already open", message));
    });
  });
}

function toFilter(q: z.infer<typeof filterQuery>): DashboardFilter {
  return {
    ...(q.state && { state: q.state }),
    ...(q.q && { q: q.q }),
    ...(q.alert && { alert: true }),
    ...(q.unlinked_since && { unlinkedSince: new Date(q.unlinked_since) }),
    page: q.page ?? 1,
  };
}

/** Signed as the QR email signs them; only rows whose session is running get one. */
function liveLinks(ctx: FleetContext, rows: readonly DashboardRow[], now: Date): Map<string, string> {
  const expiresAt = new Date(now.getTime() + ctx.config.QRFLEET_LIVE_LINK_TTL_S * 1000);
  const running = rows.filter((r) => r.session?.status === "running");
  return new Map(running.map((r) => [r.id, liveUrl(ctx.config.QRFLEET_PUBLIC_URL, signLiveToken(ctx.box.hmacKey(), r.id, expiresAt))]));
}

/** JSON for scripts (they ask for it, or send it); the dashboard's own forms get pages. */
function answersJson(req: FastifyRequest): boolean {
  return wantsJson(req) || (req.headers["content-type"] ?? "").startsWith("application/json");
}
