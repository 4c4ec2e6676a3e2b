import { mkdir, readFile } from "node:fs/promises";
import type { FastifyInstance } from "fastify";
import { chromium, type Browser, type Page } from "playwright-core";
import { PNG } from "pngjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fleetStatus } from "../../src/fleet/observe/status.js";
import { addOperator } from "../../src/fleet/operators/operators.js";
import { ADMIN_TOKEN, startHttp, type TestFleet } from "../http/harness.js";
import { waitFor } from "../support/fleet.js";
import { insertMixedFleet, runningSession, type MixedFleet } from "../support/mixed-fleet.js";

// Debian's chromium: without the background-networking flags it floods the closed network.
const CHROMIUM_ARGS = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
  "--disable-component-update", "--disable-sync", "--no-first-run",
];
const SCREENSHOT = "test-results/dashboard.png";

let ctx: TestFleet;
let app: FastifyInstance;
let close: () => Promise<void>;
let base: string;
let browser: Browser;
let fleet: MixedFleet;
let operatorEmail: string;

beforeAll(async () => {
  ({ ctx, app, close } = await startHttp());
  await app.listen({ port: 0, host: "127.0.0.1" });
  base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
  fleet = await insertMixedFleet(ctx, 300, "Branch");
  await runningSession(ctx, fleet.instances[1]!.id);
  operatorEmail = (await addOperator(ctx, { name: "Fleet desk", email: "fleet-desk@example.test" })).operator.channels[0]!.id;
  browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: CHROMIUM_ARGS });
});
afterAll(async () => {
  await browser?.close();
  await close?.();
});

/** What the page shows in a header tile, as a number. */
async function shownNumber(page: Page, id: string): Promise<number> {
  return Number(await page.locator(`#n-${id}`).getAttribute("data-value"));
}

function watchProblems(page: Page): string[] {
  const problems: string[] = [];
  page.on("console", (m) => void (m.type() === "error" && problems.push(m.text())));
  page.on("pageerror", (err) => problems.push(err.message));
  return problems;
}

describe("fleet dashboard in a real browser", () => {
  it("logs in through the form, shows the fleet, filters, pages, starts a session and renders whole", async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const problems = watchProblems(page);

    await page.goto(`${base}/admin`);
    await page.locator("#token").fill("not-the-admin-token-000");
    await page.locator("button[type=submit]").click();
    await expect.poll(() => page.locator("#login-error").textContent()).toContain("Wrong admin token");
    // The browser reports that refusal (a 401) on its console; only what follows must be clean.
    problems.length = 0;
    await page.locator("#token").fill(ADMIN_TOKEN);
    await page.locator("button[type=submit]").click();
    await page.locator("#numbers").waitFor();
    const cookies = await page.context().cookies();
    expect(cookies.find((c) => c.name === "qrfleet_admin")).toMatchObject({ httpOnly: true, sameSite: "Strict", path: "/admin" });

    const status = await fleetStatus(ctx);
    expect(await shownNumber(page, "total")).toBe(300);
    expect(await shownNumber(page, "total")).toBe(status.instances.total);
    expect(await shownNumber(page, "state-blocked")).toBe(status.instances.byState.blocked);
    expect(await shownNumber(page, "alerts")).toBe(status.alertsOpen);
    expect(await shownNumber(page, "running")).toBe(1);
    expect(await page.locator("#instances tbody tr").count()).toBe(50);
    await expect.poll(() => page.locator("#pager").textContent()).toContain("page 1 of 6");

    await page.locator("select[name=state]").selectOption("blocked");
    await page.locator("form.filters button").click();
    await page.waitForURL(/state=blocked/);
    const states = await page.locator("#instances td.state").allTextContents();
    expect(states.length).toBe(status.instances.byState.blocked);
    expect(new Set(states)).toEqual(new Set(["blocked"]));
    expect(new Set(await page.locator("#instances td.alerts").allTextContents())).toEqual(new Set(["blocked"]));

    await page.goto(`${base}/admin`);
    await page.locator("#n-state-sleepMode a").click();
    await page.waitForURL(/state=sleepMode/);
    expect(await page.locator("#instances td.state").count()).toBe(status.instances.byState.sleepMode);
    expect(new Set(await page.locator("#instances td.state").allTextContents())).toEqual(new Set(["sleepMode"]));

    await page.goto(`${base}/admin`);
    await page.locator("#pager a[rel=next]").click();
    await page.waitForURL(/page=2/);
    expect(await page.locator("#pager").textContent()).toContain("page 2 of 6");
    expect(await page.locator("#instances tbody tr").count()).toBe(50);

    const target = fleet.instances.find((i, n) => n > 1 && i.state === "notAuthorized")!;
    await page.goto(`${base}/admin?q=${target.idInstance}`);
    await page.locator(`tr[data-id="${target.idInstance}"] button`).click();
    await page.locator("h1", { hasText: "Session queued" }).waitFor();
    const session = await waitFor("the admin session in the database", () =>
      ctx.db.qrSession.findFirst({ where: { instanceId: target.id, trigger: "admin", status: { in: ["queued", "running"] } } }),
    );
    expect(session.trigger).toBe("admin");

    await page.goto(`${base}/admin`);
    const mode = page.locator(`#operators tr[data-channel="${operatorEmail}"]`);
    expect(await mode.locator("td.mode").textContent()).toBe("digest (default)");
    await mode.locator("select[name=mode]").selectOption("immediate");
    await mode.locator("button").click();
    await page.waitForURL(/#operators-heading$/);
    expect(await page.locator(`#operators tr[data-channel="${operatorEmail}"] td.mode`).textContent()).toBe("immediate");
    expect((await ctx.db.channel.findUniqueOrThrow({ where: { id: operatorEmail } })).mode).toBe("immediate");

    await page.goto(`${base}/admin`);
    expect(await page.locator("a.live").count()).toBe(1);
    expect(await page.locator("a.live").getAttribute("target")).toBe("_blank");
    await mkdir("test-results", { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    const png = PNG.sync.read(await readFile(SCREENSHOT));
    expect(png.width).toBe(1280);
    // The full page of 50 rows is far taller than the window.
    expect(png.height).toBeGreaterThan(1500);
    expect(problems).toEqual([]);
    await page.close();
  });
});
