import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import type { FastifyRequest } from "fastify";
import { recordLogout, wasLoggedOut } from "../fleet/access/admin-logins.js";
import type { FleetContext } from "../fleet/context.js";
import { bearerToken, SecretCheck } from "./auth.js";

/**
 * The dashboard's login cookie. The admin token is typed once; the browser then keeps
 * `<session>.<expiry seconds>.<MAC>`: a random session id, and an HMAC over both keyed by a key
 * derived from QRFLEET_SECRET_KEY and the admin token together. The cookie reveals nothing of the
 * token, a stolen one gives no text to guess the token against offline, and a new admin token or
 * secret key turns every cookie into a wrong MAC. Logging out records the session id in Redis until
 * the cookie would have expired, so the same cookie stops working on every daemon at once.
 */
export const ADMIN_COOKIE = "qrfleet_admin";
/** A working day and a bit: an operator logs in in the morning, not every hour. */
export const ADMIN_COOKIE_TTL_S = 12 * 3600;
const LABEL = "qrfleet admin cookie v2";
const VALUE = /^([A-Za-z0-9_-]{22})\.(\d{1,12})\.([A-Za-z0-9_-]{43})$/;

/** The cookie's key: QRFLEET_SECRET_KEY's HMAC key and the admin token, neither enough alone. */
export function adminCookieKey(secretHmacKey: Buffer, adminToken: string): Buffer {
  return createHmac("sha256", secretHmacKey).update(`${LABEL}|${adminToken}`).digest();
}

function mac(key: Buffer, session: string, expiresS: number): string {
  return createHmac("sha256", key).update(`${session}|${expiresS}`).digest("base64url");
}

export function makeAdminCookieValue(key: Buffer, now = Date.now()): string {
  const session = randomBytes(16).toString("base64url");
  const expiresS = Math.floor(now / 1000) + ADMIN_COOKIE_TTL_S;
  return `${session}.${expiresS}.${mac(key, session, expiresS)}`;
}

/** The cookie's session and expiry when its MAC holds and it has not expired; null otherwise. Logout is checked apart. */
export function readAdminCookieValue(key: Buffer, value: string, now = Date.now()): { session: string; expiresMs: number } | null {
  const match = VALUE.exec(value);
  if (!match) return null;
  const [session, expiry, presented] = [match[1]!, Number(match[2]), match[3]!];
  if (expiry * 1000 <= now) return null;
  const expected = Buffer.from(mac(key, session, expiry));
  const given = Buffer.from(presented);
  return expected.length === given.length && timingSafeEqual(expected, given) ? { session, expiresMs: expiry * 1000 } : null;
}

/** Who is logged in to the dashboard: cookies issued, checked against their MAC, expiry and logouts (fleet/access/admin-logins.ts). */
export class AdminLogins {
  private readonly key: Buffer;

  private readonly bearer: SecretCheck;

  constructor(private readonly ctx: FleetContext) {
    this.key = adminCookieKey(ctx.box.hmacKey(), ctx.config.QRFLEET_ADMIN_TOKEN);
    this.bearer = new SecretCheck(ctx, ctx.config.QRFLEET_ADMIN_TOKEN);
  }

  issue(): string {
    return makeAdminCookieValue(this.key);
  }

  /** A logged-in browser (the cookie, not logged out) or a script (`Authorization: Bearer <admin token>`). */
  async isAdmin(req: FastifyRequest): Promise<boolean> {
    const bearer = bearerToken(req.headers.authorization);
    if (bearer !== null) return (await this.bearer.check(req, bearer)) === "ok";
    const cookie = readAdminCookieValue(this.key, cookieValue(req, ADMIN_COOKIE) ?? "");
    return cookie !== null && !(await wasLoggedOut(this.ctx, cookie.session));
  }

  /** The request's cookie stops working on every daemon. */
  async logOut(req: FastifyRequest): Promise<void> {
    const cookie = readAdminCookieValue(this.key, cookieValue(req, ADMIN_COOKIE) ?? "");
    if (cookie) await recordLogout(this.ctx, cookie.session, cookie.expiresMs);
  }
}

/** One cookie's value from the Cookie header, or null. */
export function cookieValue(req: FastifyRequest, name: string): string | null {
  for (const part of (req.headers.cookie ?? "").split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return null;
}

/** Secure when the browser reached us over https, directly or through the public URL's proxy. */
export function setCookieHeader(req: FastifyRequest, publicUrl: string, value: string, maxAgeS: number): string {
  const secure = req.protocol === "https" || publicUrl.startsWith("https:");
  return [`${ADMIN_COOKIE}=${value}`, "Path=/admin", "HttpOnly", "SameSite=Strict", `Max-Age=${maxAgeS}`, ...(secure ? ["Secure"] : [])].join("; ");
}
