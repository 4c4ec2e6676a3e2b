import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "../../src/log.js";
import { startSimulator, type Script, type Simulator } from "../../src/simulator/index.js";
import { getJson, restUrl, waitFor } from "./client.js";

/** getSettings and setSettings as the provider speaks them: the wire format, the reboot, the rate limit, and the provider's lapses. */

let sim: Simulator;
let nextId = 7103000401;

beforeAll(async () => {
  sim = await startSimulator({ defaults: { settingsRebootMs: 300 }, log: createLogger({ level: "silent" }) });
});
afterAll(() => sim.close());

function instance(script: Partial<Script> = {}) {
  const def = { idInstance: String(nextId++), token: `set${nextId}`.padEnd(50, "e"), fate: "authorized" as const, ...script };
  sim.define(def);
  return def;
}

const post = (body: unknown) => ({ method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
const settle = () => new Promise((r) => setTimeout(r, 1_000));

describe("simulator settings", () => {
  it("answers getSettings with every webhook flag off for a new instance, in the provider's words", async () => {
    const { idInstance, token } = instance();
    const { status, body } = await getJson(restUrl(sim, idInstance, "getSettings", token));
    expect(status).toBe(200);
    expect(body).toMatchObject({ wid: "79001234567@c.us", webhookUrl: "", webhookUrlToken: "", stateWebhook: "no", incomingWebhook: "no", delaySendMessagesMilliseconds: 5000 });
  });

  it("saves setSettings, answers saveSettings true, and reboots the instance: starting, then back", async () => {
    const { idInstance, token } = instance();
    const saved = await getJson(restUrl(sim, idInstance, "setSettings", token), post({ webhookUrl: "https://hooks.example.test/in", webhookUrlToken: "tok-1", stateWebhook: "yes" }));
    expect(saved).toEqual({ status: 200, body: { saveSettings: true } });
    expect(sim.state(idInstance)).toBe("starting");
    await waitFor(() => sim.state(idInstance) === "authorized", 3_000);
    expect(sim.settings(idInstance)).toMatchObject({ webhookUrl: "https://hooks.example.test/in", webhookUrlToken: "tok-1", stateWebhook: "yes" });
  });

  it("refuses a setSettings with no setting, an unknown one or a bad value, and changes nothing", async () => {
    for (const bad of [{}, { webhookUrlx: "x" }, { stateWebhook: "true" }, { webhookUrl: "ftp://x" }]) {
      const { idInstance, token } = instance();
      expect((await getJson(restUrl(sim, idInstance, "setSettings", token), post(bad))).status).toBe(400);
      expect(sim.state(idInstance)).toBe("authorized");
      expect(sim.settings(idInstance).webhookUrl).toBe("");
    }
  });

  it("answers true without applying when scripted to, and changes settings by itself on a re-link", async () => {
    const liar = instance({ settingsApply: "ignore" });
    const saved = await getJson(restUrl(sim, liar.idInstance, "setSettings", liar.token), post({ stateWebhook: "yes" }));
    expect(saved.body).toEqual({ saveSettings: true });
    expect(sim.settings(liar.idInstance).stateWebhook).toBe("no");

    const relinked = instance({ fate: "never", settingsOnLink: { webhookUrl: "", stateWebhook: "no" } });
    sim.changeSettings(relinked.idInstance, { webhookUrl: "https://ours.example.test/hooks/greenapi", stateWebhook: "yes" });
    sim.script(relinked.idInstance, { fate: "authorized" });
    expect(sim.settings(relinked.idInstance)).toMatchObject({ webhookUrl: "", stateWebhook: "no" });
  });

  it("holds each instance to about one getSettings and one setSettings a second, with Retry-After", async () => {
    const a = instance();
    const b = instance();
    const first = await getJson(restUrl(sim, a.idInstance, "getSettings", a.token));
    const res = await fetch(restUrl(sim, a.idInstance, "getSettings", a.token));
    // Another method of the same instance, and another instance, are not slowed by it.
    const other = await getJson(restUrl(sim, b.idInstance, "getSettings", b.token));
    const state = await getJson(restUrl(sim, a.idInstance, "getStateInstance", a.token));
    expect([first.status, res.status, other.status, state.status]).toEqual([200, 429, 200, 200]);
    expect(res.headers.get("retry-after")).toBe("1");
    await settle();
    expect((await getJson(restUrl(sim, a.idInstance, "getSettings", a.token))).status).toBe(200);
    expect(sim.stats().rateLimited).toBe(1);
  });
});
