import type { FastifyInstance } from "fastify";
import { Registry } from "prom-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { observeFleet } from "../../src/fleet/observe/observe.js";
import { buildHttpApp } from "../../src/http/app.js";
import { startSimulator, type Simulator } from "../../src/simulator/index.js";
import { newIdInstance, newPrefix, newToken, testFleet } from "../support/fleet.js";
import { auth } from "./harness.js";

const partnerToken = newToken();
const instances = Array.from({ length: 3 }, () => ({ idInstance: newIdInstance(), token: newToken() }));
let sim: Simulator;
let ctx: ReturnType<typeof testFleet>;
let app: FastifyInstance;

beforeAll(async () => {
  sim = await startSimulator({ partnerToken, instances });
  ctx = testFleet({ QRFLEET_REDIS_PREFIX: newPrefix(), GREENAPI_PARTNER_TOKEN: partnerToken, GREENAPI_PARTNER_API_URL: sim.url, GREENAPI_INSTANCE_API_URL: sim.url });
  app = await buildHttpApp(ctx, { metrics: observeFleet(ctx.events, ctx.log, new Registry()).registry, logRequests: false });
  await app.ready();
});
afterAll(async () => {
  await app?.close();
  await ctx?.close();
  await sim?.close();
});

const sync = (payload?: unknown) => app.inject({ method: "POST", url: "/api/instances/sync", headers: auth, ...(payload !== undefined && { payload: payload as object }) });

describe("POST /api/instances/sync", () => {
  it("syncs the partner account and returns the report; a dry run first writes nothing, a second run changes nothing", async () => {
    const dry = await sync({ dryRun: true });
    expect(dry.statusCode).toBe(200);
    expect(dry.json()).toMatchObject({ dryRun: true, created: 3 });
    const first = await sync();
    expect(first.json()).toMatchObject({ dryRun: false, listed: 3, created: 3, errors: [] });
    const second = await sync({});
    expect(second.json()).toMatchObject({ created: 0, updated: 0, unchanged: 3, disabled: 0, changes: [] });
    for (const res of [dry, first, second]) for (const s of [partnerToken, ...instances.map((i) => i.token)]) expect(res.body).not.toContain(s);
  });

  it("answers the partner API's refusal as a 502 with its code, and a bad body as a 400", async () => {
    sim.partner.answer("busy");
    const busy = await sync();
    sim.partner.answer("list");
    expect(busy.statusCode).toBe(502);
    expect(busy.json()).toEqual({ error: { code: "provider_unavailable", message: expect.stringContaining("with code 429") } });
    const bad = await sync({ dryRun: "yes" });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.code).toBe("invalid_input");
  });
});
