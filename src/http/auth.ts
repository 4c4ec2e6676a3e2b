import type { FastifyReply, FastifyRequest } from "fastify";
import type { FleetContext } from "../fleet/context.js";
import { loginWaitMs, recordLoginFailure } from "../fleet/access/login-throttle.js";
import { sameSecret } from "../secrets.js";
import { sendError } from "./errors.js";

/** The token of `Authorization: Bearer <token>`, or null. */
export function bearerToken(header: string | undefined): string | null {
  return /^Bearer\s+(\S+)\s*$/i.exec(header ?? "")?.[1] ?? null;
}

/**
 * A secret checked against what a client presents, wrong guesses counted per client address
 * (fleet/access/login-throttle.ts): past the limit the client gets 429 until its window ends, before any
 * comparison. A request that presents nothing is not a guess and is not counted.
 */
export class SecretCheck {
  constructor(
    private readonly ctx: FleetContext,
    private readonly secret: string,
  ) {}

  /** "ok", "wrong" (counted) or the ms to wait; `presented` null: nothing was presented. */
  async check(req: FastifyRequest, presented: string | null): Promise<"ok" | "wrong" | number> {
    const wait = await loginWaitMs(this.ctx, req.ip);
    if (wait > 0) return wait;
    if (presented !== null && sameSecret(presented, this.secret)) return "ok";
    if (presented !== null) await recordLoginFailure(this.ctx, req.ip);
    return "wrong";
  }
}

/** The 429 of a client that failed too often. */
export function sendTooManyFailures(reply: FastifyReply, waitMs: number) {
  const seconds = Math.ceil(waitMs / 1000);
  reply.header("retry-after", String(seconds));
  return sendError(reply, 429, "too_many_failures", `too many wrong tokens from this address; try again in ${seconds} s`);
}

/** `Authorization: Bearer <secret>`, compared in constant time: the admin API's (QRFLEET_ADMIN_TOKEN) unless `what` names another. */
export function requireBearer(ctx: FleetContext, secret: string, what = "admin token") {
  const secretCheck = new SecretCheck(ctx, secret);
  return async function bearerAuth(req: FastifyRequest, reply: FastifyReply): Promise<void> {
    const presented = bearerToken(req.headers.authorization);
    const result = await secretCheck.check(req, presented);
    if (result === "ok") return;
    if (typeof result === "number") return sendTooManyFailures(reply, result);
    reply.header("www-authenticate", 'Bearer realm="qrfleet"');
    return sendError(reply, 401, "unauthorized", presented !== null ? `wrong ${what}` : `send Authorization: Bearer <${what}>`);
  };
}

/**
 * The queue dashboard is opened in a browser, which cannot send a bearer token: it takes HTTP
 * Basic auth with any user name and the admin token as the password (a bearer token works too).
 */
export function requireBasicOrBearer(ctx: FleetContext) {
  const secretCheck = new SecretCheck(ctx, ctx.config.QRFLEET_ADMIN_TOKEN);
  return async function dashboardAuth(req: FastifyRequest, reply: FastifyReply): Promise<void> {
    const result = await secretCheck.check(req, presentedPassword(req.headers.authorization ?? ""));
    if (result === "ok") return;
    if (typeof result === "number") return sendTooManyFailures(reply, result);
    reply.header("www-authenticate", 'Basic realm="qrfleet queues", charset="UTF-8"');
    return sendError(reply, 401, "unauthorized", "log in with any user name and the admin token as the password");
  };
}

function presentedPassword(header: string): string | null {
  const bearer = bearerToken(header);
  if (bearer !== null) return bearer;
  const basic = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header);
  if (!basic) return null;
  const decoded = Buffer.from(basic[1]!, "base64").toString("utf8");
  const colon = decoded.indexOf(":");
  return colon < 0 ? null : decoded.slice(colon + 1);
}
