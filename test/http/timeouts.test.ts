import { connect } from "node:net";
import { Registry } from "prom-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildHttpApp } from "../../src/http/app.js";
import { newPrefix, testFleet } from "../support/fleet.js";

const TIMEOUT_MS = 800;
let ctx: ReturnType<typeof testFleet>;
let app: Awaited<ReturnType<typeof buildHttpApp>>;
let port: number;

beforeAll(async () => {
  ctx = testFleet({ QRFLEET_REDIS_PREFIX: newPrefix(), QRFLEET_HTTP_REQUEST_TIMEOUT_MS: String(TIMEOUT_MS) });
  app = await buildHttpApp(ctx, { metrics: new Registry(), logRequests: false });
  await app.listen({ host: "127.0.0.1", port: 0 });
  port = (app.server.address() as { port: number }).port;
});
afterAll(async () => {
  await app?.close();
  await ctx?.close();
});

/** Sends `head`, then one byte every `everyMs`; resolves with what the server said and when it hung up. */
function trickle(head: string, everyMs: number): Promise<{ closedAfterMs: number; answer: string }> {
  return new Promise((resolve) => {
    const started = Date.now();
    const socket = connect(port, "127.0.0.1", () => socket.write(head));
    let answer = "";
    const drip = setInterval(() => socket.writable && socket.write("x"), everyMs);
    socket.on("data", (d) => (answer += d.toString("latin1")));
    socket.on("error", () => undefined);
    socket.on("close", () => {
      clearInterval(drip);
      resolve({ closedAfterMs: Date.now() - started, answer });
    });
  });
}

describe("the HTTP server's request timeout", () => {
  it("cuts off a body trickled to the unauthenticated provider webhook", async () => {
    const head = "POST /hooks/greenapi HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{";
    const { closedAfterMs, answer } = await trickle(head, 100);
    expect(closedAfterMs).toBeLessThan(TIMEOUT_MS + 5_000);
    expect(answer === "" || answer.startsWith("HTTP/1.1 408")).toBe(true);
  });

  it("cuts off headers that never end", async () => {
    const { closedAfterMs } = await trickle("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ", 100);
    expect(closedAfterMs).toBeLessThan(TIMEOUT_MS + 5_000);
  });

  it("still answers a request that arrives in time", async () => {
    const res = await fetch(`http://127.0.0.1:${port}/healthz`);
    expect(res.status).toBe(200);
  });
});
