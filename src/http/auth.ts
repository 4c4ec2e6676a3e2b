import type { FastifyReply, FastifyRequest } from "fastify";
import { sameSecret } from "../secrets.js";
import { sendError } from "./errors.js";

/** The token of `Authorization: Bearer <token>`, or null. */
export function bearerToken(header: string | undefined): string | null {
  return /^Bearer\s+(\S+)\s*$/i.exec(header ?? "")?.[1] ?? null;
}

/** `Authorization: Bearer <token>`, compared in constant time: the admin API's (QRFLEET_ADMIN_TOKEN) unless `what` names another. */
export function requireBearer(token: string, what = "admin token") {
  return async function bearerAuth(req: FastifyRequest, reply: FastifyReply): Promise<void> {
    const presented = bearerToken(req.headers.authorization);
    if (presented !== null && sameSecret(presented, token)) return;
    reply.header("www-authenticate", 'Bearer realm="qrfleet"');
    return sendError(reply, 401, "unauthorized", presented !== null ? `wrong ${what}` : `send Authorization: Bearer <${what}>`);
  };
}

/**
 * The queue dashboard is opened in a browser, which cannot send a bearer token: it takes HTTP
 * Basic auth with any user name and the admin token as the password (a bearer token works too).
 */
export function requireBasicOrBearer(adminToken: string) {
  return async function dashboardAuth(req: FastifyRequest, reply: FastifyReply): Promise<void> {
    const password = presentedPassword(req.headers.authorization ?? "");
    if (password !== null && sameSecret(password, adminToken)) return;
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
