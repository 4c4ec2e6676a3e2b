import type { FastifyInstance } from "fastify";
import { Registry } from "prom-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openFleet } from "../../src/wiring/runtime.js";
import { buildHttpApp } from "../../src/http/app.js";
import { toApiError } from "../../src/http/errors.js";
import { createLogger } from "../../src/log.js";
import { newIdInstance, newPrefix, newToken, testConfig } from "../support/fleet.js";
import { ADMIN_TOKEN, auth } from "./harness.js";

const lines: string[] = [];
let app: FastifyInstance;
let ctx: ReturnType<typeof openFleet>;

beforeAll(async () => {
  const log = createLogger({ level: "debug", destination: { write: (line: string) => void lines.push(line) } });
  ctx = openFleet(testConfig({ QRFLEET_REDIS_PREFIX: newPrefix() }), log);
  app = await buildHttpApp(ctx, { metrics: new Registry() });
  app.get("/test/boom", async () => {
    throw new Error(`connect to postgres://qrfleet:pw-in-url@db failed (admin ${ADMIN_TOKEN})`);
  });
  await app.ready();
});
afterAll(async () => {
  await app.close();
  await ctx.close();
});

describe("request logging and internal errors", () => {
  it("logs each request by route pattern, never the Authorization header or a token", async () => {
    const token = newToken();
    const hookToken = `hook-${newToken()}`;
    const idInstance = newIdInstance();
    const created = await app.inject({
      method: "POST", url: "/api/instances", headers: auth,
      payload: { apiUrl: "https://7103.api.greenapi.com", idInstance, token, webhookToken: hookToken },
    });
    expect(created.statusCode).toBe(201);
    await app.inject({ method: "GET", url: `/api/instances/${idInstance}`, headers: auth });
    await app.inject({
      method: "POST", url: "/hooks/greenapi", headers: { authorization: `Bearer ${hookToken}x` },
      payload: { typeWebhook: "stateInstanceChanged", instanceData: { idInstance }, timestamp: 1, stateInstance: "notAuthorized" },
    });
    const log = lines.join("");
    expect(log).toContain('"route":"/api/instances/:ref"');
    expect(log).toContain('"status":401');
    for (const secret of [ADMIN_TOKEN, token, hookToken]) expect(log).not.toContain(secret);
  });

  it("answers 500 internal with a generic message and logs the error masked", async () => {
    const res = await app.inject({ method: "GET", url: "/test/boom" });
    expect(res.statusCode).toBe(500);
    expect(res.json()).toEqual({ error: { code: "internal", message: "internal error; the server log has the details" } });
    const logged = lines.find((l) => l.includes("request failed"));
    expect(logged).toContain("connect to postgres://qrfleet:***@db");
    expect(logged).not.toContain(ADMIN_TOKEN);
    expect(logged).not.toContain("pw-in-url");
  });

  it("maps an error of unknown shape to internal and keeps its text out of the message", () => {
    expect(toApiError("a string")).toMatchObject({ status: 500, code: "internal" });
    expect(toApiError(Object.assign(new Error("x"), { statusCode: 404 }))).toMatchObject({ status: 500 });
  });
});
