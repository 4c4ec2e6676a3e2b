import { createHmac, timingSafeEqual } from "node:crypto";
import type { FastifyRequest } from "fastify";
import { sameSecret } from "../secrets.js";
import { bearerToken } from "./auth.js";

/**
 * The dashboard's login cookie. The admin token is typed once; the browser then keeps
 * `<expiry seconds>.<MAC>`, where the MAC is an HMAC keyed by the admin token over a fixed label
 * and the expiry. The cookie is not the token and reveals nothing of it, and a new admin token
 * turns every cookie made under the old one into a wrong MAC: no list of sessions to revoke.
 */
export const ADMIN_COOKIE = "qrfleet_admin";
/** A working day and a bit: an operator logs in in the morning, not every hour. */
export const ADMIN_COOKIE_TTL_S = 12 * 3600;
const LABEL = "qrfleet admin cookie v1";

function mac(adminToken: string, expiresS: number): string {
  return createHmac("sha256", adminToken).update(`${LABEL}|${expiresS}`).digest("base64url");
}

export function makeAdminCookieValue(adminToken: string, now = Date.now()): string {
  const expiresS = Math.floor(now / 1000) + ADMIN_COOKIE_TTL_S;
  return `${expiresS}.${mac(adminToken, expiresS)}`;
}

export function isValidAdminCookieValue(adminToken: string, value: string, now = Date.now()): boolean {
  const match = /^(\d{1,12})\.([A-Za-z0-9_-]{43})$/.exec(value);
  if (!match) return false;
  const expiresS = Number(match[1]);
  if (expiresS * 1000 <= now) return false;
  const expected = Buffer.from(mac(adminToken, expiresS));
  const presented = Buffer.from(match[2]!);
  return expected.length === presented.length && timingSafeEqual(expected, presented);
}

/** One cookie's value from the Cookie header, or null. */
export function cookieValue(req: FastifyRequest, name: string): string | null {
  for (const part of (req.headers.cookie ?? "").split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return null;
}

/** A logged-in browser (the cookie) or a script (`Authorization: Bearer <admin token>`). */
export function isAdmin(req: FastifyRequest, adminToken: string): boolean {
  const bearer = bearerToken(req.headers.authorization);
  if (bearer !== null) return sameSecret(bearer, adminToken);
  const cookie = cookieValue(req, ADMIN_COOKIE);
  return cookie !== null && isValidAdminCookieValue(adminToken, cookie);
}

/** Secure when the browser reached us over https, directly or through the public URL's proxy. */
export function setCookieHeader(req: FastifyRequest, publicUrl: string, value: string, maxAgeS: number): string {
  const secure = req.protocol === "https" || publicUrl.startsWith("https:");
  return [`${ADMIN_COOKIE}=${value}`, "Path=/admin", "HttpOnly", "SameSite=Strict", `Max-Age=${maxAgeS}`, ...(secure ? ["Secure"] : [])].join("; ");
}
