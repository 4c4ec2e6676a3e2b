import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { enqueueSession } from "../../src/fleet/sessions/sessions.js";
import type { WebhookReport } from "../../src/fleet/instances/webhook-setup.js";
import { instanceChangesChannel } from "../../src/fleet/instances/instance-changes.js";
import { createLogger } from "../../src/log.js";
import { createRedis, redisTarget } from "../../src/queues.js";
import { startSimulator, type Script, type Simulator } from "../../src/simulator/index.js";
import { newToken, simulatedInstance, testFleet } from "../support/fleet.js";
import { cliRunner, noStack } from "./run.js";

/** `qrfleet instance webhooks`: every instance's provider webhook read, and set up only where that takes nothing from anyone. */

const qrfleet = cliRunner();
const HOOK = "https://qrfleet.example.test/hooks/greenapi";
const FOREIGN = "https://crm-user:crm-PASSWORD@crm.example.test/green/in?key=crm-QUERYSECRET";
// The CLI's pace, one call per instance and method every 1.5 s, against the simulator's limit of one a second (950 ms):
// a margin wide enough for a loaded machine's delays, so a 429 here says the pace was not kept.
const env = { QRFLEET_PUBLIC_URL: "https://qrfleet.example.test", QRFLEET_SETTINGS_VERIFY_AFTER_MS: "300", QRFLEET_PROVIDER_CALL_INTERVAL_MS: "1500" };

let sim: Simulator;
let ctx: ReturnType<typeof testFleet>;
const ids: Record<string, string> = {};
const tokens: string[] = [];

async function add(name: string, script: Partial<Script> = {}, extra: Record<string, unknown> = {}) {
  const inst = await simulatedInstance(ctx, sim, { fate: "authorized", ...script }, { label: name, ...extra });
  ids[name] = inst.idInstance;
  tokens.push(inst.token);
  return inst;
}

beforeAll(async () => {
  sim = await startSimulator({ defaults: { settingsRebootMs: 100 }, log: createLogger({ level: "silent" }) });
  ctx = testFleet({});
  const hookToken = `hook-${newToken()}`;
  tokens.push(hookToken);
  await add("blank");
  await add("mine", {}, { webhookToken: hookToken });
  sim.changeSettings(ids.mine!, { webhookUrl: HOOK, webhookUrlToken: hookToken, stateWebhook: "yes" });
  await add("half", {}, { webhookToken: hookToken });
  sim.changeSettings(ids.half!, { webhookUrl: `${HOOK}/`, webhookUrlToken: hookToken, stateWebhook: "no" });
  await add("customer");
  sim.changeSettings(ids.customer!, { webhookUrl: FOREIGN, webhookUrlToken: "crm-TOKENSECRET", stateWebhook: "yes", incomingWebhook: "yes" });
  const busy = await add("busy", { fate: "never" });
  await enqueueSession(ctx, busy.id, "admin");
  await add("liar", { settingsApply: "ignore" });
  await add("refused", { fate: "wrong_token" });
});
afterAll(async () => {
  await sim?.close();
  await ctx?.close();
});

const rowOf = (r: WebhookReport, name: string) => r.instances.find((i) => i.idInstance === ids[name]);
const never = ["crm-PASSWORD", "crm-QUERYSECRET", "crm-TOKENSECRET", "crm-user", "/green/in"];

describe("qrfleet instance webhooks", { timeout: 60_000 }, () => {
  it("plans: classes each instance, names only a foreign receiver's host, changes nothing", async () => {
    const out = await qrfleet(["instance", "webhooks", "--plan"], env);
    expect(out.code).toBe(1); // the refused token is an error
    expect(out.stdout).toContain("7 instances: 3 unset, 1 ours, 1 ours_incomplete, 1 foreign, 1 errors");
    expect(out.stdout).toMatch(new RegExp(`${ids.customer}\\s+customer\\s+foreign \\(crm\\.example\\.test\\)`));
    expect(out.stdout).toContain("--apply would set ours on the 4 unset or ours_incomplete");
    expect(out.stderr).toContain("qrfleet: read 7 of 7\n");
    for (const s of [...never, ...tokens]) expect(out.stdout + out.stderr).not.toContain(s);

    const json = JSON.parse((await qrfleet(["instance", "webhooks", "--plan", "--json"], env)).stdout) as WebhookReport;
    expect(Object.fromEntries(Object.keys(ids).map((n) => [n, rowOf(json, n)?.setup]))).toEqual({
      blank: "unset", mine: "ours", half: "ours_incomplete", customer: "foreign", busy: "unset", liar: "unset", refused: "error",
    });
    expect(rowOf(json, "refused")?.error?.code).toBe("invalid_token");
    expect(sim.stats().settingsSaved).toBe(0);
    const recorded = await ctx.db.instance.findFirstOrThrow({ where: { idInstance: ids.customer } });
    expect(recorded.webhookSetup).toBe("foreign");
    for (const s of never) expect(JSON.stringify(recorded.settingsSeen)).not.toContain(s);
  });

  it("applies only where unset or incomplete, skips an open session, reads each change back and reports the one that did not stick", async () => {
    // What every daemon hears: each new token is announced, so their webhook caches accept it at once.
    const announced: string[] = [];
    const listener = createRedis(redisTarget(ctx.config));
    await listener.subscribe(instanceChangesChannel(qrfleet.prefix));
    listener.on("message", (_channel: string, message: string) => announced.push(...(JSON.parse(message) as string[])));
    const out = await qrfleet(["instance", "webhooks", "--apply", "--json"], env);
    listener.disconnect();
    expect(out.code).toBe(1);
    expect(noStack(out.stderr)).toBe(true);
    const report = JSON.parse(out.stdout) as WebhookReport;
    expect(Object.fromEntries(Object.keys(ids).map((n) => [n, rowOf(report, n)?.result]))).toEqual({
      blank: "applied", mine: "unchanged", half: "applied", customer: "skipped_foreign", busy: "skipped_session", liar: "not_applied", refused: undefined,
    });
    expect(report.totals).toMatchObject({ applied: 2, not_applied: 1, skipped_session: 1, skipped_foreign: 1, unchanged: 1, error: 1 });
    expect(announced.sort()).toEqual([ids.blank, ids.half, ids.liar].sort());

    for (const name of ["blank", "half"]) {
      const inst = await ctx.db.instance.findFirstOrThrow({ where: { idInstance: ids[name] } });
      const settings = sim.settings(ids[name]!);
      expect(settings).toMatchObject({ webhookUrl: HOOK, stateWebhook: "yes" });
      // A fresh token each, sealed as `instance update --webhook-token` seals it.
      expect(ctx.box.open(inst.webhookTokenCiphertext!)).toBe(settings.webhookUrlToken);
      expect(inst.webhookSetup).toBe("ours");
    }
    expect(sim.settings(ids.customer!).webhookUrl).toBe(FOREIGN);
    expect(sim.settings(ids.busy!).webhookUrl).toBe("");
    // Three saves (blank, half, and the one the liar ignored), each instance paced: a 429 at most where a loaded machine delayed one call.
    expect(sim.stats().settingsSaved).toBe(3);
    expect(sim.stats().rateLimited).toBeLessThanOrEqual(1);

    const again = await qrfleet(["instance", "webhooks", "--plan"], env);
    expect(again.stdout).toContain("7 instances: 2 unset, 3 ours, 0 ours_incomplete, 1 foreign, 1 errors");
  });

  it("takes restoreSettings on instance update, yes or no, and shows what was read", async () => {
    const updated = await qrfleet.json<{ restoreSettings: boolean; webhookSetup: string }>(["instance", "update", ids.blank!, "--restore-settings", "yes"]);
    expect(updated).toMatchObject({ restoreSettings: true, webhookSetup: "ours" });
    const shown = await qrfleet(["instance", "show", ids.blank!]);
    expect(shown.stdout).toMatch(/webhook setup: +ours \(read \d{4}-/);
    expect(shown.stdout).toMatch(/restore settings: +yes/);
    expect((await qrfleet(["instance", "update", ids.blank!, "--restore-settings", "maybe"])).code).toBe(2);
  });

  it("says what to give when neither --plan nor --apply is", async () => {
    const out = await qrfleet(["instance", "webhooks"], env);
    expect(out.code).toBe(2);
    expect(out.stderr).toContain("say what to do: --plan reads every instance's settings, --apply sets ours up");
  });
});
