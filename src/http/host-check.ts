import { isIP } from "node:net";
import type { FastifyInstance } from "fastify";
import { sendError } from "./errors.js";

/**
 * DNS rebinding: a page on a name its owner points at this daemon's address is, to the browser,
 * of the same origin as that name, and may read what the daemon answers there. The browser still
 * sends that name as Host, so the pages (/admin, /live) and /metrics answer only Hosts that are
 * an address (no page can rebind to those), the public URL's name, localhost, or a name listed in
 * QRFLEET_ALLOWED_HOSTS. Machines that present a token of their own (/api, the provider's
 * webhook) and the probes are not browsers' business and are not checked.
 */

const UNCHECKED_PREFIXES = ["/api/", "/hooks/"];
const UNCHECKED_ROUTES = new Set(["/healthz", "/readyz"]);

/** A Host header as RFC 9110 allows it: a name or an address, and a port. Anything else (userinfo, paths) is refused outright. */
const HOST_HEADER = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(?::\d{1,5})?$/;

export type HostAllowed = (hostHeader: string | undefined) => boolean;

/** `allowed`: names as listed; one starting with a dot also admits every name under it. */
export function hostAllowList(publicUrl: string, allowed: readonly string[]): HostAllowed {
  const names = new Set(["localhost", canonical(new URL(publicUrl).hostname), ...allowed.filter((n) => !n.startsWith(".")).map(canonical)]);
  const suffixes = allowed.filter((n) => n.startsWith(".")).map(canonical);
  return (header) => {
    if (header === undefined || !HOST_HEADER.test(header)) return false;
    const name = canonical(header.replace(/:\d+$/, ""));
    if (isIP(name.replace(/^\[|\]$/g, "")) !== 0) return true;
    return names.has(name) || suffixes.some((s) => name.endsWith(s));
  };
}

/** Lower case, no trailing dot: `Example.COM.` and `example.com` are one name to DNS. */
function canonical(name: string): string {
  return name.toLowerCase().replace(/\.$/, "");
}

function checked(url: string): boolean {
  const path = url.split("?", 1)[0]!;
  return !UNCHECKED_ROUTES.has(path) && !UNCHECKED_PREFIXES.some((p) => path.startsWith(p));
}

export function installHostCheck(app: FastifyInstance, allowed: HostAllowed): void {
  app.addHook("onRequest", async (req, reply) => {
    if (!checked(req.url) || allowed(req.headers.host)) return;
    return sendError(reply, 421, "unknown_host", "this server does not answer to that host name; use the address in QRFLEET_PUBLIC_URL");
  });
}
