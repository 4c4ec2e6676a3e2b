import { mkdir } from "node:fs/promises";
import type { FastifyInstance } from "fastify";
import { chromium, type Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ADMIN_TOKEN, startHttp } from "../http/harness.js";

// Debian's chromium: without the background-networking flags it floods the closed network.
const CHROMIUM_ARGS = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
  "--disable-component-update", "--disable-sync", "--no-first-run",
];
const SCREENSHOT = "test-results/queue-board.png";

let app: FastifyInstance;
let close: () => Promise<void>;
let base: string;
let browser: Browser;
const basic = `Basic ${Buffer.from(`admin:${ADMIN_TOKEN}`).toString("base64")}`;

beforeAll(async () => {
  ({ app, close } = await startHttp());
  await app.listen({ port: 0, host: "127.0.0.1" });
  base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
  browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: CHROMIUM_ARGS });
});
afterAll(async () => {
  await browser?.close();
  await close?.();
});

describe("the queue board", () => {
  it("renders whole in a real browser under its policy, with nothing loaded from another host", async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 }, extraHTTPHeaders: { authorization: basic } });
    const problems: string[] = [];
    const elsewhere: string[] = [];
    page.on("console", (m) => void (m.type() === "error" && problems.push(m.text())));
    page.on("pageerror", (err) => problems.push(err.message));
    page.on("request", (r) => void (new URL(r.url()).origin !== base && elsewhere.push(r.url())));

    const res = await page.goto(`${base}/admin/queues/queue/notify`);
    expect(res?.status()).toBe(200);
    expect(res?.headers()["content-security-policy"]).toContain("frame-ancestors 'none'");
    await page.getByText("notify").first().waitFor();
    await page.waitForLoadState("networkidle");
    await mkdir("test-results", { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });

    expect(elsewhere).toEqual([]);
    expect(problems).toEqual([]);
    await page.close();
  });

  it("refuses, on the server, every call that would change a queue", async () => {
    const headers = { authorization: basic };
    const calls = [
      { method: "PUT" as const, url: "/admin/queues/api/queues/notify/clean/completed" },
      { method: "PUT" as const, url: "/admin/queues/api/queues/notify/pause" },
      { method: "PUT" as const, url: "/admin/queues/api/queues/notify/empty" },
      { method: "PUT" as const, url: "/admin/queues/api/queues/notify/obliterate" },
      { method: "POST" as const, url: "/admin/queues/api/queues/notify/add", payload: { name: "x", data: {} } },
    ];
    for (const call of calls) {
      const res = await app.inject({ ...call, headers });
      expect(res.statusCode, `${call.method} ${call.url}: ${res.body}`).toBeGreaterThanOrEqual(400);
      expect(res.statusCode, call.url).not.toBe(404);
    }
  });
});
