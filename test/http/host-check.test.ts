import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { signLiveToken } from "../../src/notify/live-link.js";
import { ADMIN_TOKEN, startHttp, type TestFleet } from "./harness.js";

/**
 * DNS rebinding: a browser on a page at evil.example, rebound to this daemon's address, sends
 * `Host: evil.example`. Every page and /metrics must refuse it; machines with their own tokens
 * and the probes must not care.
 */

const METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"] as const;
type Method = (typeof METHODS)[number];
const UNCHECKED = /^\/(api|hooks)\/|^\/(healthz|readyz)$/;

let app: FastifyInstance;
let ctx: TestFleet;
let close: () => Promise<void>;
let routes: { method: Method; url: string }[];

beforeAll(async () => {
  ({ app, ctx, close } = await startHttp({ QRFLEET_PUBLIC_URL: "https://qr.example.com", QRFLEET_ALLOWED_HOSTS: "qrfleet.internal,.svc.cluster.local" }));
  const token = signLiveToken(ctx.box.hmacKey(), "00000000-0000-4000-8000-000000000000", new Date(Date.now() + 60_000));
  routes = everyRoute(app.printRoutes({ commonPrefix: false }), token);
});
afterAll(async () => close());

const request = (route: { method: Method; url: string }, host: string) =>
  app.inject({ method: route.method, url: route.url, headers: { host, authorization: `Bearer ${ADMIN_TOKEN}` }, payload: route.method === "GET" || route.method === "HEAD" ? undefined : {} });

describe("the Host header", () => {
  it("is checked on every page and /metrics, and on no API, webhook or probe route", async () => {
    expect(routes.length).toBeGreaterThan(50);
    const pages = routes.filter((r) => !UNCHECKED.test(r.url));
    expect(pages.map((r) => r.url)).toEqual(expect.arrayContaining(["/admin", "/metrics", "/admin/queues", "/admin/login", expect.stringMatching(/^\/live\/[^/]+\/pair$/)]));
    for (const route of routes) {
      const res = await request(route, "evil.example:8080");
      if (UNCHECKED.test(route.url)) expect(res.statusCode, `${route.method} ${route.url}`).not.toBe(421);
      else {
        expect(res.statusCode, `${route.method} ${route.url}`).toBe(421);
        if (route.method !== "HEAD") expect(res.json().error.code).toBe("unknown_host");
      }
    }
    // A path no route has is refused too: the check does not depend on a route being known.
    expect((await request({ method: "GET", url: "/anything" }, "evil.example")).statusCode).toBe(421);
  });

  it("admits the public URL's name, localhost, any address and the configured names, whatever the case or port", async () => {
    const hosts = ["qr.example.com", "QR.Example.com.:443", "localhost:8080", "127.0.0.1:8080", "10.1.2.3", "[::1]:8080", "[fd00::1]",
      "qrfleet.internal", "qrfleet.svc.cluster.local:9090", "a.b.svc.cluster.local"];
    for (const host of hosts) {
      for (const url of ["/metrics", "/admin"]) expect((await request({ method: "GET", url }, host)).statusCode, `${host} ${url}`).not.toBe(421);
    }
  });

  it("refuses names that only look like an allowed one, and Host headers that are not a host", async () => {
    const hosts = ["qr.example.com.evil.example", "localhost.evil.example", "evilqr.example.com", "svc.cluster.local.evil", "evil.example@127.0.0.1",
      "127.0.0.1/admin", "127.0.0.1.nip.io", "[::1]evil", "qrfleet.internal:80:80", "qrfleet.internal\u0000"];
    for (const host of hosts) expect((await request({ method: "GET", url: "/metrics" }, host)).statusCode, JSON.stringify(host)).toBe(421);
  });
});

/** Every (method, URL) fastify routes, from its printed tree, with each parameter given a value. */
function everyRoute(tree: string, liveToken: string): { method: Method; url: string }[] {
  const values: Record<string, string> = { token: liveToken, queueName: "sessions", queueStatus: "failed", sequence: "1" };
  const stack: string[] = [];
  const out: { method: Method; url: string }[] = [];
  for (const line of tree.split("\n")) {
    const m = /^([│ ]*)[├└]── (.+?)(?: \(([A-Z, ]+)\))?$/.exec(line);
    if (!m) continue;
    const depth = m[1]!.length / 4;
    stack.length = depth;
    stack.push(m[2]!);
    const url = stack.join("").replace(/\/\//g, "/").replace(/:(\w+)(\([^)]*\))?/g, (_, name: string) => values[name] ?? "00000000-0000-4000-8000-000000000000")
      .replace(/\*$/, "anything");
    for (const method of (m[3] ?? "").split(", ")) if ((METHODS as readonly string[]).includes(method)) out.push({ method: method as Method, url });
  }
  return out;
}
