import type { FastifyInstance } from "fastify";
import { Registry } from "prom-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildHttpApp } from "../../src/http/app.js";
import { newPrefix, testFleet } from "../support/fleet.js";
import { ADMIN_TOKEN, startHttp } from "./harness.js";

let app: FastifyInstance;
let close: () => Promise<void>;

beforeAll(async () => {
  ({ app, close } = await startHttp());
});
afterAll(async () => close());

describe("health, metrics and the queue dashboard", () => {
  it("answers /healthz and /readyz with 200 when PostgreSQL and Redis answer", async () => {
    expect((await app.inject({ method: "GET", url: "/healthz" })).json()).toEqual({ status: "ok" });
    const ready = await app.inject({ method: "GET", url: "/readyz" });
    expect(ready.statusCode).toBe(200);
    expect(ready.json()).toEqual({ status: "ready", checks: { postgres: "ok", redis: "ok" } });
  });

  it("answers /readyz with 503 naming the dependency that failed", async () => {
    const ctx = testFleet({ QRFLEET_REDIS_PREFIX: newPrefix(), REDIS_URL: "redis://127.0.0.1:1" });
    const broken = await buildHttpApp(ctx, { metrics: new Registry(), logRequests: false });
    try {
      const res = await broken.inject({ method: "GET", url: "/readyz" });
      expect(res.statusCode).toBe(503);
      expect(res.json()).toEqual({ status: "unavailable", checks: { postgres: "ok", redis: expect.stringMatching(/^(error|timeout)$/) } });
    } finally {
      await broken.close();
      await ctx.close();
    }
  });

  it("serves Prometheus metrics as text", async () => {
    const res = await app.inject({ method: "GET", url: "/metrics" });
    expect(res.statusCode).toBe(200);
    expect(res.headers["content-type"]).toMatch(/^text\/plain/);
    expect(res.body).toContain("qrfleet_session_transitions_total");
  });

  it("asks for the metrics token on /metrics when one is set, and for nothing else there", async () => {
    const metricsToken = `metrics-${"x".repeat(32)}`;
    const guarded = await startHttp({ QRFLEET_METRICS_TOKEN: metricsToken });
    try {
      const anonymous = await guarded.app.inject({ method: "GET", url: "/metrics" });
      expect(anonymous.statusCode).toBe(401);
      expect(anonymous.json().error.message).toBe("send Authorization: Bearer <metrics token>");
      const admin = await guarded.app.inject({ method: "GET", url: "/metrics", headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
      expect(admin.statusCode).toBe(401);
      const right = await guarded.app.inject({ method: "GET", url: "/metrics", headers: { authorization: `Bearer ${metricsToken}` } });
      expect(right.statusCode).toBe(200);
      expect(right.body).toContain("qrfleet_session_transitions_total");
      expect((await guarded.app.inject({ method: "GET", url: "/healthz" })).statusCode).toBe(200);
    } finally {
      await guarded.close();
    }
  });

  it("puts bull-board behind Basic auth with the admin token as password", async () => {
    const anonymous = await app.inject({ method: "GET", url: "/admin/queues" });
    expect(anonymous.statusCode).toBe(401);
    expect(anonymous.headers["www-authenticate"]).toMatch(/^Basic/);
    const wrong = Buffer.from("admin:wrong-password").toString("base64");
    expect((await app.inject({ method: "GET", url: "/admin/queues", headers: { authorization: `Basic ${wrong}` } })).statusCode).toBe(401);

    const basic = `Basic ${Buffer.from(`admin:${ADMIN_TOKEN}`).toString("base64")}`;
    const page = await app.inject({ method: "GET", url: "/admin/queues", headers: { authorization: basic } });
    expect(page.statusCode).toBe(200);
    expect(page.headers["content-type"]).toMatch(/text\/html/);
    const queues = await app.inject({ method: "GET", url: "/admin/queues/api/queues", headers: { authorization: basic } });
    expect(queues.statusCode).toBe(200);
    expect(queues.json().queues.map((q: { name: string }) => q.name).sort()).toEqual(["notify", "qr-session", "settings", "sweep"]);
    expect(queues.body).not.toContain(ADMIN_TOKEN);
  });
});
