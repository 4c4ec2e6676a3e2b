import { createHash, randomUUID } from "node:crypto";
import QRCode from "qrcode";
import { describe, expect, it } from "vitest";
import { cancelSession } from "../../src/fleet/sessions/sessions.js";
import { endedSession, liveInstance, liveLink, markLinked, pagePost, readEvents, sessionsOf, tamper, useLiveRoutes } from "./support.js";

const h = useLiveRoutes();

/** An instance on the simulator (no worker runs here: sessions stay queued unless a test moves them). */
const newInstance = (label = "Front desk") => liveInstance(h.ctx, h.sim, { fate: "never" }, label);

/** Starts a session as the page's button does; returns its id. */
async function start(link: string): Promise<string> {
  const res = await h.app.inject(pagePost(h.base, `/live/${link}/sessions`));
  expect(res.statusCode, res.body).toBeLessThan(300);
  return res.json().session.id;
}

describe("live page: links", () => {
  it("refuses a tampered link with 403, an expired one with 410 and a malformed one with 403, as readable pages", async () => {
    const { inst, link } = await newInstance();
    const expired = liveLink(h.ctx, inst.id, -1000);
    const cases: Array<[string, number, string]> = [
      [tamper(link), 403, "not valid"],
      [expired, 410, "expired"],
      ["not-a-token", 403, "not valid"],
      [link.slice(0, 20), 403, "not valid"],
    ];
    for (const [token, status, words] of cases) {
      const res = await h.app.inject({ method: "GET", url: `/live/${token}`, headers: { accept: "text/html" } });
      expect(res.statusCode, token).toBe(status);
      expect(res.headers["content-type"]).toMatch(/^text\/html/);
      expect(res.body).toContain(words);
      expect(res.body).not.toContain(token);
    }
    expect(await sessionsOf(h.ctx, inst.id)).toHaveLength(0);
  });

  it("answers JSON errors when the client asks for JSON, and 404 for an instance that is gone", async () => {
    const { inst, link } = await newInstance();
    const res = await h.app.inject({ method: "GET", url: `/live/${tamper(link)}`, headers: { accept: "application/json" } });
    expect(res.statusCode).toBe(403);
    expect(res.json()).toEqual({ error: { code: "link_invalid", message: expect.any(String) } });
    const gone = liveLink(h.ctx, randomUUID());
    expect((await h.app.inject({ url: `/live/${gone}`, headers: { accept: "application/json" } })).json().error.code).toBe("not_found");
    expect(await sessionsOf(h.ctx, inst.id)).toHaveLength(0);
  });

  it("serves the page with strict headers, the label, a large crisp QR slot, and neither token in the body", async () => {
    const { link, token } = await newInstance("Shop <front>");
    const res = await h.app.inject({ method: "GET", url: `/live/${link}` });
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
    expect(res.body).not.toMatch(/\son[a-z]+=/i);
    expect(csp).toContain("default-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(res.headers["referrer-policy"]).toBe("no-referrer");
    expect(res.headers["x-frame-options"]).toBe("DENY");
    expect(res.headers["cache-control"]).toBe("no-store");
    expect(res.body).not.toMatch(/<(script|link|img)[^>]+(src|href)="https?:/);
  });
});

describe("live page: what it offers", () => {
  it("offers a Start button when no session is open, saying how the last one ended", async () => {
    const { inst, link } = await newInstance();
    const fresh = await h.app.inject({ url: `/live/${link}` });
    expect(fresh.body).toContain('<button id="start" type="button">Show a QR code</button>');
    expect(fresh.body).toContain("No session is running for this instance.");
    expect(fresh.body).toContain('"sessionId":null');
    await endedSession(h.ctx, inst.id, "timed_out");
    const after = await h.app.inject({ url: `/live/${link}` });
    expect(after.body).toContain("The last session ended: Expired — nobody scanned in time.");
    expect(after.body).toContain('id="start"');
  });

  it("shows and follows a session already open, with the button hidden", async () => {
    const { link } = await newInstance();
    const sessionId = await start(link);
    const res = await h.app.inject({ url: `/live/${link}` });
    expect(res.body).toContain(`"sessionId":"${sessionId}"`);
    expect(res.body).toContain('<section class="start" id="start-box" hidden>');
    expect(res.body).toContain("Attempt 1 of 3");
    expect(res.body).toContain('id="pair-form"');
  });

  it("says a linked instance is linked, with its phone, and offers neither a button nor pairing", async () => {
    const { inst, link } = await newInstance();
    await endedSession(h.ctx, inst.id, "authorized", "79001234567");
    await markLinked(h.ctx, inst);
    const res = await h.app.inject({ url: `/live/${link}` });
    expect(res.statusCode).toBe(200);
    expect(res.body).toContain("Linked ✓ to +7 900 ••• •• 67");
    expect(res.body).toContain("ask an admin");
    expect(res.body).not.toContain('id="start"');
    expect(res.body).not.toContain('id="pair-form"');
    expect(res.body).not.toContain("<script nonce");
  });

  it("tells a page whose instance's token was refused to get an admin, and starts nothing for it", async () => {
    const { inst, link } = await newInstance();
    await h.ctx.db.instance.update({ where: { id: inst.id }, data: { attention: "invalid_token" } });
    expect((await h.app.inject({ url: `/live/${link}` })).body).toContain("This instance needs an admin");
    const res = await h.app.inject(pagePost(h.base, `/live/${link}/sessions`));
    expect(res.statusCode).toBe(409);
    expect(res.json().error.code).toBe("needs_admin");
    expect(await sessionsOf(h.ctx, inst.id)).toHaveLength(0);
  });
});

describe("live page: the linked number", () => {
  it("is masked on every route that can show it: the linked view, the last outcome, and the stream's end", async () => {
    const linked = await newInstance();
    await endedSession(h.ctx, linked.inst.id, "authorized", "79005553311");
    await markLinked(h.ctx, linked.inst);
    const wrong = await newInstance();
    const wrongRow = await endedSession(h.ctx, wrong.inst.id, "wrong_number", "79005553311");

    const shown = [
      (await h.app.inject({ url: `/live/${linked.link}` })).body,
      (await h.app.inject({ url: `/live/${wrong.link}` })).body,
    ];
    const stream = await readEvents(await fetch(`${h.base}/live/${wrong.link}/events?session=${wrongRow.id}`), (evs) => evs.some((e) => e.event === "end"));
    shown.push(stream.text);
    expect(shown[0]).toContain("Linked ✓ to +7 900 ••• •• 11");
    expect(shown[1]).toContain("Wrong number — linked to +7 900 ••• •• 11");
    expect(stream.events.at(-1)).toMatchObject({ event: "end", data: { status: "wrong_number", phone: "+7 900 ••• •• 11" } });
    for (const text of shown) expect(text).not.toMatch(/9005553|5553311/);
  });
});

describe("live page: events and images", () => {
  it("answers an event stream with no session to follow with 404, starting nothing", async () => {
    const { inst, link } = await newInstance();
    const res = await fetch(`${h.base}/live/${link}/events?session=not-a-uuid`);
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ error: { code: "no_session", message: expect.stringContaining("press its button") } });
    expect(await sessionsOf(h.ctx, inst.id)).toHaveLength(0);
  });

  it("streams the session's status, then its end, and closes", async () => {
    const { inst, link } = await newInstance();
    const sessionId = await start(link);
    const res = await fetch(`${h.base}/live/${link}/events?session=${sessionId}`);
    expect(res.headers.get("content-type")).toMatch(/^text\/event-stream/);
    expect(res.headers.get("cache-control")).toBe("no-store");
    const read = readEvents(res, (evs) => evs.some((e) => e.event === "end"));
    await new Promise((r) => setTimeout(r, 300));
    await cancelSession(h.ctx, sessionId, "closed by the test");
    const { events, text } = await read;
    expect(text.startsWith("retry: ")).toBe(true);
    expect(events[0]).toMatchObject({ event: "status", data: { sessionId, status: "queued", attempt: 1 } });
    expect(events.at(-1)).toMatchObject({ event: "end", data: { sessionId, status: "cancelled", message: "Cancelled: closed by the test" } });
    expect(await sessionsOf(h.ctx, inst.id)).toHaveLength(1);
  });

  it("announces a stored QR with its URL and serves that PNG while the session is open", async () => {
    const { inst, link } = await newInstance();
    const sessionId = await start(link);
    const png = await QRCode.toBuffer("hello-live", { type: "png" });
    await h.ctx.db.qrSession.update({ where: { id: sessionId }, data: { status: "running", qrCount: 1, startedAt: new Date() } });
    await h.ctx.db.qrAttempt.create({ data: { sessionId, number: 1 } });
    await h.ctx.db.qrCode.create({
      data: { sessionId, attempt: 1, sequence: 1, png: new Uint8Array(png), sha256: createHash("sha256").update(png).digest("hex") },
    });
    const res = await fetch(`${h.base}/live/${link}/events`);
    const { events } = await readEvents(res, (evs) => evs.some((e) => e.event === "qr"));
    const qr = events.find((e) => e.event === "qr")!.data;
    expect(qr).toMatchObject({ sessionId, attempt: 1, sequence: 1 });
    expect(Date.parse(String(qr.expiresAt)) - Date.now()).toBeGreaterThan(90_000);
    const image = await h.app.inject({ url: String(qr.url) });
    expect(image.statusCode).toBe(200);
    expect(image.headers["content-type"]).toBe("image/png");
    expect(image.headers["cache-control"]).toBe("no-store");
    expect(image.rawPayload.equals(png)).toBe(true);
    expect((await h.app.inject({ url: `/live/${link}/qr/2.png` })).statusCode).toBe(404);
    expect((await h.app.inject({ url: `/live/${link}/qr/1.png?session=${randomUUID()}` })).statusCode).toBe(404);
    expect((await h.app.inject({ url: `/live/${tamper(link)}/qr/1.png` })).statusCode).toBe(403);
    expect(await sessionsOf(h.ctx, inst.id)).toHaveLength(1);
  });
});
