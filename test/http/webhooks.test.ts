import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { WebhookReport } from "../../src/fleet/instances/webhook-setup.js";
import { createLogger } from "../../src/log.js";
import { startSimulator, type Simulator } from "../../src/simulator/index.js";
import { Registry } from "prom-client";
import type { FastifyInstance } from "fastify";
import { observeFleet } from "../../src/fleet/observe/observe.js";
import { buildHttpApp } from "../../src/http/app.js";
import { newPrefix, simulatedInstance, testFleet } from "../support/fleet.js";
import { Recorder } from "./harness.js";

/** POST /api/instances/webhooks: the same plan and setup as `qrfleet instance webhooks`, and restoreSettings on the instance update. */

let sim: Simulator;
let ctx: ReturnType<typeof testFleet>;
let app: FastifyInstance;
let api: Recorder;
const tokens: string[] = [];

beforeAll(async () => {
  sim = await startSimulator({ defaults: { settingsRebootMs: 50 }, log: createLogger({ level: "silent" }) });
  // Paced as the provider asks, and changes read back soon after their reboot.
  ctx = testFleet({ QRFLEET_REDIS_PREFIX: newPrefix(), QRFLEET_PROVIDER_CALL_INTERVAL_MS: "1000", QRFLEET_SETTINGS_VERIFY_AFTER_MS: "200" });
  app = await buildHttpApp(ctx, { metrics: observeFleet(ctx.events, ctx.log, new Registry()).registry, logRequests: false });
  await app.ready();
  api = new Recorder(app);
});
afterAll(async () => {
  await app?.close();
  await ctx?.close();
  await sim?.close();
});

describe("POST /api/instances/webhooks", () => {
  it("plans with apply false, sets up with apply true, and never returns a token", async () => {
    const blank = await simulatedInstance(ctx, sim, { fate: "authorized" });
    const customer = await simulatedInstance(ctx, sim, { fate: "authorized" });
    tokens.push(blank.token, customer.token);
    sim.changeSettings(customer.idInstance, { webhookUrl: "https://crm.example.test/in?key=crm-SECRET", stateWebhook: "yes" });

    const plan = await api.api("POST", "/api/instances/webhooks", { apply: false });
    expect(plan.statusCode).toBe(200);
    expect(plan.json<WebhookReport>()).toMatchObject({ apply: false, failed: false, totals: { instances: 2, unset: 1, foreign: 1 } });

    const applied = await api.api("POST", "/api/instances/webhooks", { apply: true });
    const report = applied.json<WebhookReport>();
    expect(report.instances.find((r) => r.id === blank.id)).toMatchObject({ setup: "unset", result: "applied" });
    expect(report.instances.find((r) => r.id === customer.id)).toMatchObject({ setup: "foreign", host: "crm.example.test", result: "skipped_foreign" });
    tokens.push(sim.settings(blank.idInstance).webhookUrlToken);
    for (const body of api.bodies) for (const s of [...tokens, "crm-SECRET"]) expect(body).not.toContain(s);
  });

  it("refuses a body without apply, and takes restoreSettings on the instance update", async () => {
    const bad = await api.api("POST", "/api/instances/webhooks", {});
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toMatchObject({ error: { code: "invalid_input" } });
    const inst = await simulatedInstance(ctx, sim, { fate: "authorized" });
    const updated = await api.api("PATCH", `/api/instances/${inst.id}`, { restoreSettings: true });
    expect(updated.json()).toMatchObject({ restoreSettings: true, webhookSetup: null });
    expect((await api.api("PATCH", `/api/instances/${inst.id}`, { restoreSettings: "yes" })).statusCode).toBe(400);
  });
});
