import { createHash, randomUUID } from "node:crypto";
import Fastify, { type FastifyInstance } from "fastify";
import QRCode from "qrcode";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { addInstance } from "../../src/fleet/instances.js";
import { cancelSession } from "../../src/fleet/sessions.js";
import { registerLivePage } from "../../src/http/live.js";
import { signLiveToken } from "../../src/notify/live-link.js";
import { startSimulator, type Simulator } from "../../src/simulator/index.js";
import { newIdInstance, newPrefix, newToken, testFleet } from "../support/fleet.js";
import { readEvents, tamper } from "./support.js";

let ctx: ReturnType<typeof testFleet>;
let app: FastifyInstance;
let sim: Simulator;
const HOUR = 3_600_000;

beforeAll(async () => {
  ctx = testFleet({ QRFLEET_REDIS_PREFIX: newPrefix() });
  sim = await startSimulator();
  app = Fastify({ logger: false });
  await registerLivePage(app, ctx);
  await app.listen({ port: 0, host: "127.0.0.1" });
});
afterAll(async () => {
  await app?.close();
  await sim?.close();
  await ctx?.close();
});

/** An instance on the simulator (no worker runs here: sessions stay queued unless a test moves them). */
async function newInstance(label = "Front desk") {
  const idInstance = newIdInstance();
  const token = newToken();
  sim.define({ idInstance, token, fate: "never" });
  const inst = await addInstance(ctx, { apiUrl: sim.url, idInstance, token, label });
  return { inst, token, idInstance, link: signLiveToken(ctx.box.hmacKey(), inst.id, new Date(Date.now() + HOUR)) };
}

const sessionsOf = (instanceId: string) => ctx.db.qrSession.findMany({ where: { instanceId } });
const base = () => `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;

describe("live page: links", () => {
  it("refuses a tampered link with 403, an expired one with 410 and a malformed one with 403, as readable pages", async () => {
    const { inst, link } = await newInstance();
    const expired = signLiveToken(ctx.box.hmacKey(), inst.id, new Date(Date.now() - 1000));
    const cases: Array<[string, number, string]> = [
      [tamper(link), 403, "not valid"],
      [expired, 410, "expired"],
      ["not-a-token", 403, "not valid"],
      [link.slice(0, 20), 403, "not valid"],
    ];
    for (const [token, status, words] of cases) {
      const res = await app.inject({ method: "GET", url: `/live/${token}`, headers: { accept: "text/html" } });
      expect(res.statusCode, token).toBe(status);
      expect(res.headers["content-type"]).toMatch(/^text\/html/);
      expect(res.body).toContain(words);
      expect(res.body).not.toContain(token);
    }
    expect(await sessionsOf(inst.id)).toHaveLength(0);
  });

  it("answers JSON errors when the client asks for JSON, and 404 for an instance that is gone", async () => {
    const { inst, link } = await newInstance();
    const res = await app.inject({ method: "GET", url: `/live/${tamper(link)}`, headers: { accept: "application/json" } });
    expect(res.statusCode).toBe(403);
    expect(res.json()).toEqual({ error: { code: "link_invalid", message: expect.any(String) } });
    const gone = signLiveToken(ctx.box.hmacKey(), randomUUID(), new Date(Date.now() + HOUR));
    expect((await app.inject({ url: `/live/${gone}`, headers: { accept: "application/json" } })).json().error.code).toBe("not_found");
    expect(await sessionsOf(inst.id)).toHaveLength(0);
  });

  it("serves the page with strict headers, the label, a large crisp QR slot, and neither token in the body", async () => {
    const { link, token } = await newInstance("Shop <front>");
    const res = await app.inject({ method: "GET", url: `/live/${link}` });
    expect(res.statusCode).toBe(200);
    expect(res.headers["content-type"]).toMatch(/^text\/html/);
    expect(res.body).toContain("Shop &#60;front&#62;");
    expect(res.body).toContain("image-rendering: pixelated");
    expect(res.body).toMatch(/width: 320px/);
    expect(res.body).not.toContain(link);
    expect(res.body).not.toContain(token);
    const csp = String(res.headers["content-security-policy"]);
    const nonce = /script-src 'nonce-([^']+)'/.exec(csp)?.[1];
    expect(nonce).toBeTruthy();
    expect(res.body).toContain(`<script nonce="${nonce}">`);
    expect(csp).toContain("default-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(res.headers["referrer-policy"]).toBe("no-referrer");
    expect(res.headers["x-frame-options"]).toBe("DENY");
    expect(res.headers["cache-control"]).toBe("no-store");
    expect(res.body).not.toMatch(/<(script|link|img)[^>]+(src|href)="https?:/);
  });

  it("starts one live session however many times the page is opened", async () => {
    const { inst, link } = await newInstance();
    const [a, b] = await Promise.all([app.inject({ url: `/live/${link}` }), app.inject({ url: `/live/${link}` })]);
    await app.inject({ url: `/live/${link}` });
    expect([a.statusCode, b.statusCode]).toEqual([200, 200]);
    const sessions = await sessionsOf(inst.id);
    expect(sessions).toHaveLength(1);
    expect(sessions[0]!.trigger).toBe("live");
  });
});

describe("live page: events and images", () => {
  it("starts a session when the event stream is opened first, and the page then joins it", async () => {
    const { inst, link } = await newInstance();
    const controller = new AbortController();
    const res = await fetch(`${base()}/live/${link}/events?session=not-a-uuid`, { signal: controller.signal });
    const { events } = await readEvents(res, (evs) => evs.length > 0);
    controller.abort();
    const sessions = await sessionsOf(inst.id);
    expect(sessions).toHaveLength(1);
    expect(events[0]).toMatchObject({ event: "status", data: { sessionId: sessions[0]!.id, status: "queued" } });
    expect((await app.inject({ url: `/live/${link}` })).body).toContain(sessions[0]!.id);
    expect(await sessionsOf(inst.id)).toHaveLength(1);
  });

  it("streams the session's status, then its end, and closes", async () => {
    const { inst, link } = await newInstance();
    const page = await app.inject({ url: `/live/${link}` });
    const sessionId = /"sessionId":"([0-9a-f-]{36})"/.exec(page.body)![1]!;
    const res = await fetch(`${base()}/live/${link}/events?session=${sessionId}`);
    expect(res.headers.get("content-type")).toMatch(/^text\/event-stream/);
    expect(res.headers.get("cache-control")).toBe("no-store");
    const read = readEvents(res, (evs) => evs.some((e) => e.event === "end"));
    await new Promise((r) => setTimeout(r, 300));
    await cancelSession(ctx, sessionId, "closed by the test");
    const { events, text } = await read;
    expect(text.startsWith("retry: ")).toBe(true);
    expect(events[0]).toMatchObject({ event: "status", data: { sessionId, status: "queued", attempt: 1 } });
    expect(events.at(-1)).toMatchObject({ event: "end", data: { sessionId, status: "cancelled", message: "Cancelled: closed by the test" } });
    expect(await sessionsOf(inst.id)).toHaveLength(1);
  });

  it("announces a stored QR with its URL and serves that PNG while the session is open", async () => {
    const { inst, link } = await newInstance();
    await app.inject({ url: `/live/${link}` });
    const [session] = await sessionsOf(inst.id);
    const png = await QRCode.toBuffer("hello-live", { type: "png" });
    await ctx.db.qrSession.update({ where: { id: session!.id }, data: { status: "running", qrCount: 1, startedAt: new Date() } });
    await ctx.db.qrAttempt.create({ data: { sessionId: session!.id, number: 1 } });
    await ctx.db.qrCode.create({
      data: { sessionId: session!.id, attempt: 1, sequence: 1, png: new Uint8Array(png), sha256: createHash("sha256").update(png).digest("hex") },
    });
    const res = await fetch(`${base()}/live/${link}/events`);
    const { events } = await readEvents(res, (evs) => evs.some((e) => e.event === "qr"));
    const qr = events.find((e) => e.event === "qr")!.data;
    expect(qr).toMatchObject({ sessionId: session!.id, attempt: 1, sequence: 1 });
    expect(Date.parse(String(qr.expiresAt)) - Date.now()).toBeGreaterThan(90_000);
    const image = await app.inject({ url: String(qr.url) });
    expect(image.statusCode).toBe(200);
    expect(image.headers["content-type"]).toBe("image/png");
    expect(image.headers["cache-control"]).toBe("no-store");
    expect(image.rawPayload.equals(png)).toBe(true);
    expect((await app.inject({ url: `/live/${link}/qr/2.png` })).statusCode).toBe(404);
    expect((await app.inject({ url: `/live/${link}/qr/1.png?session=${randomUUID()}` })).statusCode).toBe(404);
    expect((await app.inject({ url: `/live/${tamper(link)}/qr/1.png` })).statusCode).toBe(403);
    expect(await sessionsOf(inst.id)).toHaveLength(1);
  });
});

describe("live page: phone-number pairing", () => {
  const pair = (link: string, body: unknown) =>
    app.inject({ method: "POST", url: `/live/${link}/pair`, headers: { "content-type": "application/json" }, payload: JSON.stringify(body) });

  it("refuses a phone number that is not 7 to 15 digits", async () => {
    const { link } = await newInstance();
    for (const body of [{ phoneNumber: "123" }, { phoneNumber: "79001234567890123" }, { phoneNumber: "call me" }, {}, { phoneNumber: null }]) {
      const res = await pair(link, body);
      expect(res.statusCode, JSON.stringify(body)).toBe(400);
      expect(res.json().error.code).toBe("invalid_input");
    }
    expect((await pair(tamper(link), { phoneNumber: "79001234567" })).statusCode).toBe(403);
  });

  it("returns the provider's code without ever showing the instance token, once per interval", async () => {
    const { link, token } = await newInstance();
    const res = await pair(link, { phoneNumber: "+7 900 123-45-67" });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ code: expect.stringMatching(/^[A-Z]{4}-[A-Z]{4}$/) });
    expect(res.body).not.toContain(token);
    const again = await pair(link, { phoneNumber: "79001234567" });
    expect(again.statusCode).toBe(429);
    expect(again.json().error.code).toBe("rate_limited");
  });

  it("pairs only the phone an instance expects, without saying which one it is", async () => {
    const { inst, link } = await newInstance();
    await ctx.db.instance.update({ where: { id: inst.id }, data: { expectedPhone: "79990000001" } });
    const wrong = await pair(link, { phoneNumber: "79001234567" });
    expect(wrong.statusCode).toBe(409);
    expect(wrong.json().error.code).toBe("wrong_number");
    expect(wrong.body).not.toContain("79990000001");
    const right = await pair(link, { phoneNumber: "+7 999 000-00-01" });
    expect(right.statusCode, right.body).toBe(200);
  });

  it("holds the interval across daemons sharing Redis", async () => {
    const { link } = await newInstance();
    const other = testFleet({ QRFLEET_REDIS_PREFIX: ctx.config.QRFLEET_REDIS_PREFIX });
    const second = Fastify({ logger: false });
    try {
      await registerLivePage(second, other);
      expect((await pair(link, { phoneNumber: "79001234567" })).statusCode).toBe(200);
      const elsewhere = await second.inject({
        method: "POST", url: `/live/${link}/pair`, headers: { "content-type": "application/json" }, payload: JSON.stringify({ phoneNumber: "79001234567" }),
      });
      expect(elsewhere.statusCode).toBe(429);
    } finally {
      await second.close();
      await other.close();
    }
  });

  it("says a stored token that cannot be decrypted needs an admin, instead of failing", async () => {
    const { inst, link } = await newInstance();
    await ctx.db.instance.update({ where: { id: inst.id }, data: { tokenCiphertext: Buffer.from("sealed under another key") } });
    const res = await pair(link, { phoneNumber: "79001234567" });
    expect(res.statusCode, res.body).toBe(502);
    expect(res.json().error).toEqual({ code: "invalid_token", message: expect.stringContaining("tell an admin") });
  });

  it("explains a refused token in words, without the token or the provider URL", async () => {
    const { link, token, idInstance } = await newInstance();
    sim.script(idInstance, { fate: "wrong_token" });
    const res = await pair(link, { phoneNumber: "79001234567" });
    expect(res.statusCode, res.body).toBe(502);
    expect(res.json().error).toEqual({ code: "invalid_token", message: expect.stringContaining("tell an admin") });
    expect(res.body).not.toContain(token);
    expect(res.body).not.toContain(sim.url);
  });
});
