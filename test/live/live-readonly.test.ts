import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startSimulator, type Simulator } from "../../src/simulator/index.js";
import type { Daemon } from "../../workers/daemon.js";
import { newPrefix, startTestDaemon, waitFor } from "../support/fleet.js";
import { endedSession, liveInstance, liveLink, markLinked, sessionsOf, tamper, waitForStartSweep } from "./support.js";

/**
 * Mail filters open every link of an email in a headless browser before the person does. Here a
 * whole daemon runs (workers and its own HTTP app), so a session started by mistake would open a
 * socket at the simulator.
 */

let sim: Simulator;
let daemon: Daemon;

beforeAll(async () => {
  sim = await startSimulator({ defaults: { rotationMs: 1500, scanWindowMs: 20_000 } });
  daemon = await startTestDaemon({ QRFLEET_REDIS_PREFIX: newPrefix(), QRFLEET_PUBLIC_URL: "https://qr.example.test" });
  await waitForStartSweep(daemon.ctx);
});
afterAll(async () => {
  await daemon?.close();
  await sim?.close();
});

const ctx = () => daemon.ctx;
const url = (path: string) => `${daemon.url}${path}`;

/** A POST as the page's script sends it (same origin, JSON), with `headers` changed. */
function post(path: string, body: string | undefined = "{}", headers: Record<string, string> = {}) {
  const all: Record<string, string> = { "content-type": "application/json", "sec-fetch-site": "same-origin", origin: daemon.url, ...headers };
  return fetch(url(path), { method: "POST", headers: Object.fromEntries(Object.entries(all).filter(([, v]) => v !== "")), body });
}

type Started = { session: { id: string; attempt: number; maxAttempts: number }; created: boolean };
type Refused = { error: { code: string; message: string } };

/** Every URL the live page answers a GET on, for this link: page, stream (named session or not), QR images. */
function readOnlyUrls(link: string, sessionId: string | null): string[] {
  const paths = [`/live/${link}`, `/live/${link}/events`, `/live/${link}/qr/1.png`, `/live/${link}/qr/1.png?session=${sessionId ?? "x"}`];
  if (sessionId) paths.push(`/live/${link}/events?session=${sessionId}`);
  return paths;
}

describe("live links opened by a mail filter", () => {
  it("GET and HEAD of every live URL start no session, open no socket and call no provider", async () => {
    const none = await liveInstance(ctx(), sim);
    const ended = await liveInstance(ctx(), sim);
    const endedRow = await endedSession(ctx(), ended.inst.id, "timed_out");
    const linked = await liveInstance(ctx(), sim, { fate: "authorized", phone: "79001234567" });
    await endedSession(ctx(), linked.inst.id, "authorized", "79001234567");
    await markLinked(ctx(), linked.inst);
    const cases = [none, ended, linked];
    const restBefore = sim.stats().restRequests;

    for (const [c, sessionId] of [[none, null], [ended, endedRow.id], [linked, null]] as const) {
      for (const target of readOnlyUrls(c.link, sessionId)) {
        for (const method of ["GET", "HEAD"]) {
          const res = await fetch(url(target), { method, headers: { accept: "text/html,*/*", "user-agent": "Mozilla/5.0 HeadlessChrome" } });
          expect(res.status, `${method} ${target}`).toBeLessThan(500);
          await res.arrayBuffer();
        }
      }
    }
    expect(sim.stats().restRequests).toBe(restBefore);

    // The workers are live: a session started now opens its socket, and none of the above did.
    const control = await liveInstance(ctx(), sim);
    expect((await post(`/live/${control.link}/sessions`)).status).toBe(201);
    await waitFor("the control session's socket", async () => sim.connections(control.idInstance) > 0);
    expect(await sessionsOf(ctx(), none.inst.id)).toHaveLength(0);
    expect((await sessionsOf(ctx(), ended.inst.id)).map((s) => s.id)).toEqual([endedRow.id]);
    expect(await sessionsOf(ctx(), linked.inst.id)).toHaveLength(1);
    for (const c of cases) expect(sim.connections(c.idInstance), c.idInstance).toBe(0);
  });

  it("says on the page what each instance offers: a button, or linked with its phone", async () => {
    const none = await liveInstance(ctx(), sim, { fate: "never" }, "Till 3");
    const linked = await liveInstance(ctx(), sim, { fate: "authorized" });
    await endedSession(ctx(), linked.inst.id, "authorized", "79001234567");
    await markLinked(ctx(), linked.inst);
    const idle = await (await fetch(url(`/live/${none.link}`))).text();
    expect(idle).toContain("Show a QR code");
    const done = await (await fetch(url(`/live/${linked.link}`))).text();
    expect(done).toContain("Linked ✓ to +7 900 ••• •• 67");
    expect(done).not.toContain("Show a QR code");
    const head = await fetch(url(`/live/${none.link}`), { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(head.headers.get("content-type")).toMatch(/^text\/html/);
  });
});

describe("starting a session from the page", () => {
  it("starts exactly one session however many times Start is pressed, and its socket opens", async () => {
    const { inst, link, idInstance } = await liveInstance(ctx(), sim);
    const [a, b] = await Promise.all([post(`/live/${link}/sessions`), post(`/live/${link}/sessions`)]);
    const [first, second] = [(await a.json()) as Started, (await b.json()) as Started];
    expect([a.status, b.status].sort()).toEqual([200, 201]);
    expect(first.session.id).toBe(second.session.id);
    expect([first.created, second.created].sort()).toEqual([false, true]);
    const again = await post(`/live/${link}/sessions`, "");
    expect(again.status).toBe(200);
    expect(((await again.json()) as Started).session).toMatchObject({ id: first.session.id, attempt: 1, maxAttempts: 3 });
    const sessions = await sessionsOf(ctx(), inst.id);
    expect(sessions.map((s) => [s.id, s.trigger])).toEqual([[first.session.id, "live"]]);
    await waitFor("the session's socket", async () => sim.connections(idInstance) > 0);
  });

  it("refuses a start once the instance is linked", async () => {
    const { inst, link } = await liveInstance(ctx(), sim, { fate: "authorized" });
    await markLinked(ctx(), inst);
    const res = await post(`/live/${link}/sessions`);
    expect(res.status).toBe(409);
    expect(((await res.json()) as Refused).error.code).toBe("already_linked");
    expect(await sessionsOf(ctx(), inst.id)).toHaveLength(0);
  });

  it("refuses a start posted by another site, by a form or from nowhere a browser would name", async () => {
    const { inst, link } = await liveInstance(ctx(), sim);
    const path = `/live/${link}/sessions`;
    const forged: Array<[string, Record<string, string>, string | undefined, number, string]> = [
      ["another site", { "sec-fetch-site": "cross-site", origin: "https://evil.example" }, "{}", 403, "cross_site"],
      ["a sibling site", { "sec-fetch-site": "same-site", origin: "https://other.example.test" }, "{}", 403, "cross_site"],
      ["an old browser on another site", { "sec-fetch-site": "", origin: "https://evil.example" }, "{}", 403, "cross_site"],
      ["a sandboxed frame", { "sec-fetch-site": "", origin: "null" }, "{}", 403, "cross_site"],
      ["an HTML form", { "content-type": "application/x-www-form-urlencoded" }, "start=1", 415, "unsupported_media_type"],
      ["a text/plain form", { "content-type": "text/plain" }, '{"start":1}', 415, "unsupported_media_type"],
      ["a multipart form", { "content-type": "multipart/form-data; boundary=x" }, "--x--", 415, "unsupported_media_type"],
    ];
    for (const [who, headers, body, status, code] of forged) {
      const res = await post(path, body, headers);
      expect(res.status, who).toBe(status);
      expect(((await res.json()) as Refused).error.code, who).toBe(code);
    }
    expect(await sessionsOf(ctx(), inst.id)).toHaveLength(0);
    // The address operators are sent (QRFLEET_PUBLIC_URL) is the page's own origin, e.g. behind a proxy.
    expect((await post(path, "{}", { "sec-fetch-site": "", origin: "https://qr.example.test" })).status).toBe(201);
  });

  it("answers garbage with clear 4xx errors and starts nothing", async () => {
    const { inst, link } = await liveInstance(ctx(), sim);
    const cases: Array<[string, string, string | undefined, number, string]> = [
      ["tampered link", `/live/${tamper(link)}/sessions`, "{}", 403, "link_invalid"],
      ["expired link", `/live/${liveLink(ctx(), inst.id, -1000)}/sessions`, "{}", 410, "link_expired"],
      ["not JSON", `/live/${link}/sessions`, "{start", 400, "invalid_json"],
      ["a field", `/live/${link}/sessions`, '{"instanceId":"x"}', 400, "invalid_input"],
      ["an array", `/live/${link}/sessions`, "[1]", 400, "invalid_input"],
      ["a huge body", `/live/${link}/sessions`, JSON.stringify({ pad: "x".repeat(200_000) }), 413, "payload_too_large"],
      ["a huge pairing body", `/live/${link}/pair`, JSON.stringify({ phoneNumber: "7".repeat(100_000) }), 413, "payload_too_large"],
      ["an over-long link", `/live/${link}${"x".repeat(500)}/sessions`, "{}", 414, "uri_too_long"],
    ];
    for (const [what, path, body, status, code] of cases) {
      const res = await post(path, body);
      const text = await res.text();
      expect(res.status, what).toBe(status);
      expect((JSON.parse(text) as Refused).error.code, what).toBe(code);
      expect(text, what).not.toContain(link);
    }
    const overlong = await fetch(url(`/live/${link}${"x".repeat(500)}`));
    expect(overlong.status).toBe(414);
    expect(await overlong.text()).not.toContain(link);
    expect((await fetch(url(`/live/${link}/qr/abc.png`))).status).toBe(404);
    expect(await sessionsOf(ctx(), inst.id)).toHaveLength(0);
  });
});
