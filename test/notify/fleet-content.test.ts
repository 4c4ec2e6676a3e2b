import { mkdir } from "node:fs/promises";
import { chromium, type Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { composeDigest, composeIncident, DIGEST_LIST_MAX } from "../../src/notify/fleet-content.js";
import type { DigestItem, EventView, FleetView } from "../../src/notify/types.js";

/**
 * What the fleet-wide operators read about the fleet, as rendered in Chromium on a phone: an
 * incident, its end, and a digest sent because of one, long enough to be cut.
 */

const CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"];
let browser: Browser;

beforeAll(async () => {
  browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: CHROMIUM_ARGS });
});
afterAll(async () => {
  await browser?.close();
});

const AT = new Date("2026-12-07T10:00:00Z");
const incident: FleetView = {
  id: "e1", type: "fleet.incident", createdAt: AT, items: [],
  data: {
    count: 480, threshold: 20, enabledInstances: 600, windowMs: 300_000, firstAt: "2026-12-07T09:58:01.000Z", latestAt: "2026-12-07T09:59:40.000Z",
    dashboardUrl: "https://qr.example.test/admin?unlinked_since=2026-12-07T09%3A57%3A01.000Z",
  },
};

function waiting(n: number): DigestItem {
  const view: EventView = {
    id: `ev${n}`, type: "qr.updated", createdAt: AT, attempt: 1, qrSequence: 1, data: {},
    instance: { id: `i${n}`, idInstance: String(7_100_000_000 + n), label: `Branch <${n}> & "co"`, expectedPhone: null },
    session: { id: `s${n}`, trigger: "sweep", status: "running", attempt: 1, maxAttempts: 3, phone: null, errorCode: null, error: null },
  };
  return { view, unlinkedSince: new Date(AT.getTime() - n * 60_000), liveUrl: `https://qr.example.test/live/tok${n}` };
}

async function render(html: string, screenshot: string) {
  const page = await browser.newPage({ viewport: { width: 390, height: 844 } });
  await page.setContent(html);
  const width = Number(await page.evaluate("document.documentElement.scrollWidth"));
  await mkdir("test-results", { recursive: true });
  await page.screenshot({ path: screenshot, fullPage: true });
  return { page, width };
}

describe("messages about the fleet", () => {
  it("an incident names the count, the times and the filtered dashboard, and fits a phone", async () => {
    const mail = composeIncident(incident);
    expect(mail.subject).toBe("Fleet incident: 480 instances logged out within 5 min");
    expect(mail.headers).toEqual({ "X-Qrfleet-Event": "fleet.incident" });
    expect(mail.text).toContain("480 of 600 WhatsApp instances were logged out between 2026-12-07 09:58 UTC and 2026-12-07 09:59 UTC");
    const { page, width } = await render(mail.html, "test-results/fleet-incident-email.png");
    expect(width).toBeLessThanOrEqual(390);
    const link = page.getByRole("link", { name: "Open the dashboard, filtered to them" });
    expect(await link.getAttribute("href")).toBe(incident.data.dashboardUrl);
    await page.close();

    const recovered = composeIncident({ ...incident, type: "fleet.recovered", data: { count: 3, threshold: 20, windowMs: 300_000, startedAt: "2026-12-07T09:58:30.000Z", peak: 480 } });
    expect(recovered.subject).toBe("Fleet recovered: logouts back under 20 in 5 min");
    expect(recovered.text).toContain("At its worst, 480 did.");
  });

  it("a digest an incident caused says why, escapes what instances are called, and is cut after its list's limit", async () => {
    const items = Array.from({ length: DIGEST_LIST_MAX + 7 }, (_, n) => waiting(n));
    const digest: FleetView = { id: "d1", type: "digest", createdAt: AT, data: { since: "2026-12-07T09:58:00.000Z", storm: true }, items };
    const mail = composeDigest(digest, new Date(AT.getTime() + 86_400_000));
    expect(mail.subject).toBe(`qrfleet digest: ${DIGEST_LIST_MAX + 7} instances need a scan, 0 updates`);
    expect(mail.text).toContain("Many instances logged out at once (a fleet incident)");
    expect(mail.text).toContain("…and 7 more.");
    expect(mail.html).not.toContain("<506>");
    const { page, width } = await render(mail.html, "test-results/storm-digest-email.png");
    expect(width).toBeLessThanOrEqual(390);
    expect(await page.getByRole("link", { name: "Open live QR" }).count()).toBe(DIGEST_LIST_MAX);
    // Longest unlinked first.
    expect(await page.locator("b").first().textContent()).toBe(`"Branch <${DIGEST_LIST_MAX + 6}> & "co"" (${7_100_000_000 + DIGEST_LIST_MAX + 6})`);
    await page.close();
  });
});
