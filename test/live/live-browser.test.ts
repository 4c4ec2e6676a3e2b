import type { FastifyInstance } from "fastify";
import { qrTextOfPixels } from "../../src/cli/qr-terminal.js";
import { chromium, type Browser, type Page } from "playwright-core";
import { PNG } from "pngjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cancelSession } from "../../src/fleet/sessions/sessions.js";
import { startSimulator, type Simulator } from "../../src/simulator/index.js";
import type { Daemon } from "../../workers/daemon.js";
import { newPrefix, startTestDaemon, waitFor } from "../support/fleet.js";
import { endedSession, liveInstance, markLinked, sessionsOf, startLiveServer, waitForStartSweep } from "./support.js";

// Debian's chromium: without the background-networking flags it floods the closed network.
const CHROMIUM_ARGS = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
  "--disable-component-update", "--disable-sync", "--no-first-run",
];

let sim: Simulator;
let daemon: Daemon;
let app: FastifyInstance;
let base: string;
let browser: Browser;

beforeAll(async () => {
  sim = await startSimulator({ defaults: { rotationMs: 1500, scanWindowMs: 20_000 } });
  daemon = await startTestDaemon({ QRFLEET_REDIS_PREFIX: newPrefix() });
  ({ app, base } = await startLiveServer(daemon.ctx));
  await waitForStartSweep(daemon.ctx);
  browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: CHROMIUM_ARGS });
});
afterAll(async () => {
  await browser?.close();
  await app?.close();
  await daemon?.close();
  await sim?.close();
});

/** What the QR on screen says, read from a screenshot of the image as the browser drew it. */
async function decodeShownQr(page: Page): Promise<string | null> {
  const shot = PNG.sync.read(await page.locator("#qr").screenshot());
  return qrTextOfPixels(shot.data, shot.width, shot.height);
}

/** Waits until the page shows the simulator's current code and `accept` likes it. */
function waitForShownQr(page: Page, idInstance: string, accept: (text: string) => boolean): Promise<string> {
  return waitFor("the page to show the simulator's current QR", async () => {
    const shown = await decodeShownQr(page);
    return shown !== null && shown === sim.currentQr(idInstance) && accept(shown) ? shown : null;
  }, 8_000, 50);
}

/** Opens the page as a mail filter does: it clicks nothing, lingers, and fetches every URL the page names. */
async function visitLikeAScanner(page: Page, url: string): Promise<void> {
  await page.goto(url);
  await page.waitForLoadState("networkidle");
  // Typed by hand: the test build has no DOM library.
  type Attributed = { getAttribute(name: string): string | null };
  const named = await page.locator("[href], [src], [action]").evaluateAll((els) =>
    (els as unknown as Attributed[]).flatMap((el) => ["href", "src", "action"].map((a) => el.getAttribute(a)).filter((v): v is string => !!v)),
  );
  for (const target of named.map((u) => new URL(u, url)).filter((u) => u.protocol === "http:")) {
    const res = await page.request.get(target.href);
    expect(res.status(), target.pathname).toBeLessThan(500);
  }
  // A filter keeps the page open a few seconds in case a script acts late; this is the dwell we check.
  await page.waitForTimeout(2_000);
}

function watchProblems(page: Page): string[] {
  const problems: string[] = [];
  page.on("console", (m) => void (m.type() === "error" && problems.push(`${m.text()} ${m.location().url}`)));
  page.on("pageerror", (err) => problems.push(err.message));
  return problems;
}

describe("live page in a real browser", () => {
  it("starts nothing for a visit that clicks nothing; Start shows the simulator's QR, follows its rotation and counts down", async () => {
    const { inst, idInstance, link } = await liveInstance(daemon.ctx, sim, { fate: "never" }, "Reception phone");
    await endedSession(daemon.ctx, inst.id, "timed_out");
    const page = await browser.newPage();
    const problems = watchProblems(page);
    await visitLikeAScanner(page, `${base}/live/${link}`);
    expect(await sessionsOf(daemon.ctx, inst.id)).toHaveLength(1);
    expect(sim.connections(idInstance)).toBe(0);
    expect(await page.locator("#label").textContent()).toBe("Reception phone");
    expect(await page.locator("#start-text").textContent()).toContain("The last session ended: Expired");
    expect(await page.locator("#qr-box").isVisible()).toBe(false);

    await page.getByRole("button", { name: "Show a QR code" }).click();
    await page.locator("#qr").waitFor({ state: "visible", timeout: 10_000 });
    expect(await page.locator("#start").isVisible()).toBe(false);
    const box = await page.locator("#qr").boundingBox();
    expect(box!.width).toBeGreaterThanOrEqual(300);
    const first = await waitForShownQr(page, idInstance, () => true);
    expect(first).toMatch(new RegExp(`^qrfleet-sim:${idInstance}:`));
    const second = await waitForShownQr(page, idInstance, (text) => text !== first);
    expect(second).not.toBe(first);
    expect(await page.locator("#countdown").textContent()).toMatch(/^Scan within \d+:\d\d$/);
    expect(await page.locator("#attempt").textContent()).toBe("Attempt 1 of 3");
    const live = (await sessionsOf(daemon.ctx, inst.id)).filter((s) => s.trigger === "live");
    expect(live).toHaveLength(1);
    expect(sim.connections(idInstance)).toBe(1);

    await cancelSession(daemon.ctx, live[0]!.id, "closed by the test");
    await page.locator("#outcome").getByText("Cancelled: closed by the test").waitFor({ timeout: 10_000 });
    expect(await page.getByRole("button", { name: "Start again" }).isVisible()).toBe(true);
    expect(problems).toEqual([]);
    await page.close();
  }, 30_000);

  it("shows a pairing code on request, then the outcome once the phone links", async () => {
    const { idInstance, link } = await liveInstance(daemon.ctx, sim, { fate: "scan", scanAfterMs: 2_500, phone: "79001234567" });
    const page = await browser.newPage();
    await page.goto(`${base}/live/${link}`);
    expect(await page.locator("#label").textContent()).toBe(`Instance ${idInstance}`);
    await page.getByRole("button", { name: "Show a QR code" }).click();
    await page.locator("#pairing summary").click();
    await page.locator("#pair-phone").fill("123");
    await page.locator("#pair-form button").click();
    await page.locator("#pair-error").waitFor({ state: "visible" });
    expect(await page.locator("#pair-error").textContent()).toContain("7 to 15 digits");
    await page.locator("#pair-phone").fill("+7 900 123 45 67");
    await page.locator("#pair-form button").click();
    await page.locator("#pair-code").waitFor({ state: "visible" });
    expect(await page.locator("#pair-code").textContent()).toMatch(/^[A-Z]{4}-[A-Z]{4}$/);

    await page.locator("#outcome").waitFor({ state: "visible", timeout: 10_000 });
    expect(await page.locator("#outcome").textContent()).toBe("Linked ✓ to +7 900 ••• •• 67");
    expect(await page.locator("#qr").isVisible()).toBe(false);
    expect(await page.locator("#start").isVisible()).toBe(false);
    await page.close();
  }, 30_000);

  it("says a linked instance is linked, offers nothing to press, and starts nothing", async () => {
    const { inst, idInstance, link } = await liveInstance(daemon.ctx, sim, { fate: "authorized", phone: "79001234567" });
    await endedSession(daemon.ctx, inst.id, "authorized", "79001234567");
    await markLinked(daemon.ctx, inst);
    const page = await browser.newPage();
    const problems = watchProblems(page);
    await visitLikeAScanner(page, `${base}/live/${link}`);
    expect(await page.getByRole("status").textContent()).toBe("Linked ✓ to +7 900 ••• •• 67");
    await page.screenshot({ path: "test-results/live-linked.png", fullPage: true });
    expect(await page.getByRole("button").count()).toBe(0);
    expect(await page.locator("input, form").count()).toBe(0);
    expect(await sessionsOf(daemon.ctx, inst.id)).toHaveLength(1);
    expect(sim.connections(idInstance)).toBe(0);
    expect(problems).toEqual([]);
    await page.close();
  }, 30_000);
});
