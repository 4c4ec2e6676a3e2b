import { mkdir } from "node:fs/promises";
import { chromium, type Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { addOperator, assign, setChannelMode } from "../../src/fleet/operators/operators.js";
import { enqueueSession } from "../../src/fleet/sessions/sessions.js";
import { verifyLiveToken } from "../../src/notify/live-link.js";
import { startSimulator, type Simulator } from "../../src/simulator/index.js";
import type { Daemon } from "../../workers/daemon.js";
import { simulatedInstance, startTestDaemon, waitFor } from "../support/fleet.js";
import { startReceiver, type Receiver } from "../support/receiver.js";
import { startSmtp, type ReceivedMail, type TestSmtp } from "../support/smtp.js";
import { verified, type Hook } from "./support.js";

/**
 * A fleet-wide operator in digest mode, through the whole daemon: the instances nobody is assigned
 * to come in one email and one signed batch, each waiting instance with a live link that opens,
 * while an operator assigned to one instance still gets it at once.
 */

const PUBLIC_URL = "https://qr.example.test";
const CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"];
const SCREENSHOT = "test-results/digest-email.png";
let sim: Simulator;
let smtp: TestSmtp;
let receiver: Receiver;
let d: Daemon;
let browser: Browser;

beforeAll(async () => {
  sim = await startSimulator({ defaults: { rotationMs: 500, scanWindowMs: 30_000 } });
  smtp = await startSmtp();
  receiver = await startReceiver();
  d = await startTestDaemon({
    SMTP_URL: smtp.url, QRFLEET_PUBLIC_URL: PUBLIC_URL, QRFLEET_DIGEST_WINDOW_MS: "3000", QRFLEET_DIGEST_INTERVAL_MS: "60000",
  });
  browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: CHROMIUM_ARGS });
});
afterAll(async () => {
  await browser?.close();
  await d?.close();
  await Promise.all([sim?.close(), smtp?.close(), receiver?.close()]);
});

const linksOf = (mail: ReceivedMail) => [...String(mail.parsed.html).matchAll(/href="([^"]+)"/g)].map((m) => m[1]!.replace(/&amp;/g, "&"));

describe("a fleet-wide operator in digest mode", () => {
  it("gets the unassigned instances in one digest email and one signed batch; the assigned operator gets theirs at once", async () => {
    const fleet = await addOperator(d.ctx, { name: "fleet", email: "fleet@example.test", webhook: new URL("/fleet", receiver.url).href });
    await setChannelMode(d.ctx, fleet.operator.channels.find((c) => c.kind === "webhook")!.id, "digest");
    await addOperator(d.ctx, { name: "desk", email: "desk@example.test" });
    const waiting = await Promise.all(["North", "South", "East"].map((label) => simulatedInstance(d.ctx, sim, { fate: "never" }, { label })));
    const linked = await simulatedInstance(d.ctx, sim, { fate: "scan", scanAfterMs: 200, phone: "79001234567" }, { label: "West" });
    const own = await simulatedInstance(d.ctx, sim, { fate: "never" }, { label: "Front desk" });
    await assign(d.ctx, own.id, "desk");

    for (const inst of [...waiting, linked, own]) await enqueueSession(d.ctx, inst.id, "admin");
    const deskMail = await smtp.waitFor((m) => m.to.includes("desk@example.test"), 10_000);
    expect(deskMail.parsed.subject).toBe("Scan needed: Front desk (attempt 1 of 3)");
    // The desk's email went out while the fleet's waited for the digest window.
    expect(smtp.messages.filter((m) => m.to.includes("fleet@example.test"))).toEqual([]);

    const digest = await smtp.waitFor((m) => m.to.includes("fleet@example.test"), 15_000);
    expect(digest.parsed.subject).toMatch(/^qrfleet digest: 3 instances need a scan, [01] updates?$/);
    const text = digest.parsed.text ?? "";
    for (const inst of waiting) expect(text).toContain(`"${inst.label}" (${inst.idInstance})`);
    expect(text).not.toContain("Front desk");
    const links = linksOf(digest);
    expect(links).toHaveLength(3);
    const linkedIds = links.map((url) => {
      const check = verifyLiveToken(d.ctx.box.hmacKey(), url.slice(`${PUBLIC_URL}/live/`.length));
      expect(check.ok).toBe(true);
      return check.ok ? check.instanceId : null;
    });
    expect(linkedIds.sort()).toEqual(waiting.map((i) => i.id).sort());
    for (const url of links) {
      const page = await fetch(`${d.url}${new URL(url).pathname}`);
      expect(page.status).toBe(200);
      expect(await page.text()).toContain("WhatsApp");
    }

    // West was linked: it is in this digest's news, or, had its outcome come after the cut, in the next one's rows.
    const westOutcome = await waitFor("West's outcome to reach the fleet's email", () =>
      d.ctx.db.delivery.findFirst({ where: { channel: { address: "fleet@example.test" }, event: { instanceId: linked.id, type: "session.authorized" } } }),
    );
    expect(["digested", "held"]).toContain(westOutcome.status);
    if (westOutcome.status === "digested") expect(text).toContain(`"West" (${linked.idInstance}): Linked: West`);

    const batch = await receiver.waitFor((r) => r.path === "/fleet", 10_000);
    const hook: Hook = verified(batch, fleet.webhookSecret!);
    expect(hook.type).toBe("digest");
    // Each event as its own webhook would have carried it, without the QR image that is stale by now.
    const events = hook.data.events as Array<{ type: string; timestamp: string; data: Record<string, unknown> }>;
    expect(hook.data.count).toBe(events.length);
    const qrEvents = events.filter((e) => e.type === "qr.updated");
    for (const e of qrEvents) expect(e.data).not.toHaveProperty("qr");
    // A live link where a scan is still awaited; West, linked by now, has none.
    const awaiting = qrEvents.filter((e) => e.data.instanceId !== linked.id);
    expect(new Set(awaiting.map((e) => e.data.instanceId))).toEqual(new Set(waiting.map((i) => i.id)));
    for (const e of awaiting) expect(String(e.data.liveUrl)).toMatch(new RegExp(`^${PUBLIC_URL}/live/`));
    for (const e of qrEvents.filter((q) => q.data.instanceId === linked.id)) expect(e.data).not.toHaveProperty("liveUrl");
    expect(events.filter((e) => e.data.instanceId === own.id)).toEqual([]);
    // One batch, not one POST per event.
    expect(receiver.requests.filter((r) => r.path === "/fleet")).toHaveLength(1);
    expect(smtp.messages.filter((m) => m.to.includes("fleet@example.test"))).toHaveLength(1);
  });

  it("renders on a 390-pixel phone screen without sideways scrolling", async () => {
    const digest = smtp.messages.find((m) => m.to.includes("fleet@example.test"))!;
    const page = await browser.newPage({ viewport: { width: 390, height: 844 } });
    await page.setContent(String(digest.parsed.html));
    await expect.poll(() => page.locator("h2").first().textContent()).toBe("Needs a scan now (3)");
    expect(Number(await page.evaluate("document.documentElement.scrollWidth"))).toBeLessThanOrEqual(390);
    const buttons = page.getByRole("link", { name: "Open live QR" });
    expect(await buttons.count()).toBe(3);
    const box = await buttons.first().boundingBox();
    expect(box!.height).toBeGreaterThan(12);
    await mkdir("test-results", { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    await page.close();
  });
});
