import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { updateInstance } from "../../src/fleet/instances/instances.js";
import { enqueueSession } from "../../src/fleet/sessions/sessions.js";
import { sweepFleet } from "../../src/fleet/triggers/sweep.js";
import { reviewWebhooks } from "../../src/fleet/instances/webhook-setup.js";
import { createLogger } from "../../src/log.js";
import { startSimulator, type Simulator } from "../../src/simulator/index.js";
import type { Daemon } from "../../workers/daemon.js";
import { freePort } from "../greenapi/provider.js";
import { newToken, startTestDaemon, waitFor } from "../support/fleet.js";
import { startReceiver, type Receiver } from "../support/receiver.js";
import { startSmtp, type TestSmtp } from "../support/smtp.js";
import { countOf, instanceEvents, received, watchedInstance, type Watched } from "./alert-support.js";

/**
 * Settings that change by themselves after a re-link: read again after each re-link, told once per
 * change, and set back when the admin asked for it. The provider's webhooks reach the daemon only
 * once `instance webhooks --apply` pointed them at it, so the first re-link also proves that.
 */

const CUSTOMER = "https://crm.example.test/green/in?key=crm-SECRET";

let sim: Simulator;
let smtp: TestSmtp;
let receiver: Receiver;
let d: Daemon;
let plain: Watched;
let restored: Watched;
let stubborn: Watched;

beforeAll(async () => {
  [smtp, receiver] = await Promise.all([startSmtp(), startReceiver()]);
  const port = await freePort();
  d = await startTestDaemon({
    SMTP_URL: smtp.url, PORT: String(port), QRFLEET_PUBLIC_URL: `http://127.0.0.1:${port}`,
    QRFLEET_SETTINGS_CHECK_AFTER_MS: "300", QRFLEET_SETTINGS_VERIFY_AFTER_MS: "300", QRFLEET_PROVIDER_CALL_INTERVAL_MS: "1000",
  });
  sim = await startSimulator({ defaults: { rotationMs: 200, scanWindowMs: 8_000, settingsRebootMs: 200 }, log: createLogger({ level: "silent" }) });
  // Each re-link makes the provider send the customer's URL and stop state webhooks, as users report.
  const script = { fate: "scan" as const, scanAfterMs: 2_500, settingsOnLink: { webhookUrl: CUSTOMER, stateWebhook: "no" as const } };
  plain = await watchedInstance(d.ctx, sim, receiver, [{ state: "notAuthorized" }], script);
  restored = await watchedInstance(d.ctx, sim, receiver, [{ state: "notAuthorized" }], script);
  // Ours already, but the provider will not take a change back after its re-link.
  const hookToken = `hook-${newToken()}`;
  stubborn = await watchedInstance(d.ctx, sim, receiver, [{ state: "notAuthorized" }], { ...script, webhookToken: hookToken, settingsApply: "ignore" }, { webhookToken: hookToken });
  sim.changeSettings(stubborn.idInstance, { webhookUrl: `http://127.0.0.1:${port}/hooks/greenapi`, stateWebhook: "yes" });
  for (const w of [restored, stubborn]) await updateInstance(d.ctx, w.id, { restoreSettings: true });
  const report = await reviewWebhooks(d.ctx, { apply: true });
  const results = Object.fromEntries(report.instances.map((r) => [r.id, r.result]));
  expect(results).toEqual({ [plain.id]: "applied", [restored.id]: "applied", [stubborn.id]: "unchanged" });
  await enqueueSession(d.ctx, stubborn.id, "admin");
}, 60_000);
afterAll(async () => {
  await sim?.close();
  await d?.close();
  await Promise.all([smtp?.close(), receiver?.close()]);
});

const alerts = async (w: Watched) => (await instanceEvents(d.ctx, w.id)).filter((e) => e.type === "instance.alert");

describe("webhook settings after a re-link", { timeout: 60_000 }, () => {
  it("tells the operators once, in words, when the settings changed, and not again at the next re-link", async () => {
    // The reboot after setSettings ends notAuthorized: that webhook reaches the daemon, whose session is scanned.
    await waitFor("the changed settings' alert", async () => (await alerts(plain)).length === 1, 30_000);
    const [alert] = await alerts(plain);
    expect(alert!.data).toMatchObject({
      reason: "settings_changed", changes: ["webhookUrl", "stateWebhook"], restore: "off",
      before: { setup: "ours" }, after: { setup: "foreign", host: "crm.example.test" },
    });
    const { hooks, mails } = await received(smtp, receiver, plain, "instance.alert", 1);
    expect(hooks[0]!.data.summary).toContain("Its webhook settings changed since qrfleet last read them: the webhook URL is now a receiver at crm.example.test (it was qrfleet's)");
    expect(hooks[0]!.data.summary).toContain("state-change webhooks were turned off");
    expect(mails[0]!.parsed.subject).toContain("Webhook settings changed");
    expect(mails[0]!.parsed.text).toContain("qrfleet no longer hears from GREEN-API when the instance is logged out");
    for (const text of [JSON.stringify(hooks), mails[0]!.parsed.text ?? ""]) expect(text).not.toContain("crm-SECRET");

    // The next re-link finds the settings as recorded: no second alert. The webhook no longer comes, so the sweep notices the logout.
    sim.setState(plain.idInstance, "notAuthorized");
    await waitFor("the second re-link", async () => {
      await sweepFleet(d.ctx);
      return (await d.ctx.db.qrSession.count({ where: { instanceId: plain.id, status: "authorized" } })) === 2;
    }, 30_000, 500);
    const second = await d.ctx.db.qrSession.findFirstOrThrow({ where: { instanceId: plain.id }, orderBy: { createdAt: "desc" } });
    await waitFor("the second check", async () => {
      const inst = await d.ctx.db.instance.findUniqueOrThrow({ where: { id: plain.id } });
      return inst.settingsCheckDueAt === null && inst.settingsCheckedAt! > second.endedAt!;
    });
    expect(countOf(await instanceEvents(d.ctx, plain.id), "instance.alert")).toBe(1);
  });

  it("sets them back when restoreSettings is on and they were ours, and says so", async () => {
    await waitFor("the settings set back", async () => (await d.ctx.db.instance.findUniqueOrThrow({ where: { id: restored.id } })).webhookSetup === "ours" &&
      (await alerts(restored)).length === 1, 30_000);
    const inst = await d.ctx.db.instance.findUniqueOrThrow({ where: { id: restored.id } });
    expect(sim.settings(restored.idInstance)).toMatchObject({ webhookUrl: d.ctx.config.QRFLEET_PUBLIC_URL + "/hooks/greenapi", stateWebhook: "yes", webhookUrlToken: d.ctx.box.open(inst.webhookTokenCiphertext!) });
    const { hooks } = await received(smtp, receiver, restored, "instance.alert", 1);
    expect(hooks[0]!.data).toMatchObject({ reason: "settings_changed", restore: "restoring" });
    expect(hooks[0]!.data.summary).toContain("restoreSettings is on: qrfleet is setting them back");
  });

  it("says once more when setting them back did not stick", async () => {
    await waitFor("the second alert", async () => (await alerts(stubborn)).length === 2, 30_000);
    expect((await alerts(stubborn)).map((a) => a.data.reason)).toEqual(["settings_changed", "settings_not_restored"]);
    const { hooks, mails } = await received(smtp, receiver, stubborn, "instance.alert", 2);
    const failed = hooks.find((h) => h.data.reason === "settings_not_restored")!;
    expect(failed.data.summary).toContain("GREEN-API said it saved them, yet they still read foreign");
    expect(mails.map((m) => m.parsed.subject).sort()).toEqual([`Webhook settings changed: Desk notAuthorized`, `Webhook settings not restored: Desk notAuthorized`]);
    // Every settings call was paced; on a loaded machine one may still reach the provider a little early, and is waited out.
    expect(sim.stats().rateLimited).toBeLessThanOrEqual(2);
  });
});
