import Fastify, { type FastifyInstance } from "fastify";
import { qrTextOfPixels } from "../../src/cli/qr-terminal.js";
import { chromium, type Browser, type Page } from "playwright-core";
import { PNG } from "pngjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { addInstance } from "../../src/fleet/instances.js";
import { registerLivePage } from "../../src/http/live.js";
import { signLiveToken } from "../../src/notify/live-link.js";
import { startSimulator, type Simulator } from "../../src/simulator/index.js";
import type { Daemon } from "../../workers/daemon.js";
import { newIdInstance, newPrefix, newToken, startTestDaemon, waitFor } from "../support/fleet.js";


// STACK.md: Debian's chromium; without the background-networking flags it floods the closed network.
const CHROMIUM_ARGS = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
  "--disable-component-update", "--disable-sync", "--no-first-run",
];

let sim: Simulator;
let daemon: Daemon;
let app: FastifyInstance;
let browser: Browser;

beforeAll(async () => {
  sim = await startSimulator({ defaults: { rotationMs: 1500, scanWindowMs: 20_000 } });
  daemon = await startTestDaemon({ QRFLEET_REDIS_PREFIX: newPrefix() });
  // Our own server, so this test does not depend on how src/http/app.ts mounts the page.
  app = Fastify({ logger: false });
  await registerLivePage(app, daemon.ctx);
  await app.listen({ port: 0, host: "127.0.0.1" });
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

describe("live page in a real browser", () => {
  it("shows the simulator's current QR, follows its rotation and counts down", async () => {
    const idInstance = newIdInstance();
    const token = newToken();
    sim.define({ idInstance, token, fate: "never" });
    const inst = await addInstance(daemon.ctx, { apiUrl: sim.url, idInstance, token, label: "Reception phone" });
    const link = signLiveToken(daemon.ctx.box.hmacKey(), inst.id, new Date(Date.now() + 600_000));
    const { port } = app.server.address() as { port: number };

    const page = await browser.newPage();
    const problems: string[] = [];
    page.on("console", (m) => void (m.type() === "error" && problems.push(`${m.text()} ${m.location().url}`)));
    page.on("pageerror", (err) => problems.push(err.message));
    await page.goto(`http://127.0.0.1:${port}/live/${link}`);
    expect(await page.locator("#label").textContent()).toBe("Reception phone");

    await page.locator("#qr").waitFor({ state: "visible", timeout: 10_000 });
    const box = await page.locator("#qr").boundingBox();
    expect(box!.width).toBeGreaterThanOrEqual(300);
    const first = await waitForShownQr(page, idInstance, () => true);
    expect(first).toMatch(new RegExp(`^qrfleet-sim:${idInstance}:`));

    const second = await waitForShownQr(page, idInstance, (text) => text !== first);
    expect(second).not.toBe(first);

    expect(await page.locator("#countdown").isVisible()).toBe(true);
    expect(await page.locator("#countdown").textContent()).toMatch(/^Scan within \d+:\d\d$/);
    expect(await page.locator("#attempt").textContent()).toBe("Attempt 1 of 3");
    expect(problems).toEqual([]);
    await page.close();
  }, 30_000);

  it("shows a pairing code on request, then the outcome once the phone links", async () => {
    const idInstance = newIdInstance();
    const token = newToken();
    sim.define({ idInstance, token, fate: "scan", scanAfterMs: 2_500, phone: "79001234567" });
    const inst = await addInstance(daemon.ctx, { apiUrl: sim.url, idInstance, token });
    const link = signLiveToken(daemon.ctx.box.hmacKey(), inst.id, new Date(Date.now() + 600_000));
    const { port } = app.server.address() as { port: number };

    const page = await browser.newPage();
    await page.goto(`http://127.0.0.1:${port}/live/${link}`);
    expect(await page.locator("#label").textContent()).toBe(`Instance ${idInstance}`);
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
    expect(await page.locator("#outcome").textContent()).toBe("Linked ✓ to +79001234567");
    expect(await page.locator("#qr").isVisible()).toBe(false);
    await page.close();
  }, 30_000);
});
