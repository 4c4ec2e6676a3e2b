import type { FastifyInstance, InjectOptions } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { insertMixedFleet, runningSession, type MixedFleet } from "../support/mixed-fleet.js";
import { randomBytes } from "node:crypto";
import { adminCookieKey, makeAdminCookieValue, readAdminCookieValue, setCookieHeader } from "../../src/http/admin-cookie.js";
import { ADMIN_TOKEN, auth, startHttp, type TestFleet } from "./harness.js";

let ctx: TestFleet;
let app: FastifyInstance;
let close: () => Promise<void>;
let fleet: MixedFleet;
let cookie: string;

const FORM = { "content-type": "application/x-www-form-urlencoded", "sec-fetch-site": "same-origin" };

async function logIn(token: string) {
  return app.inject({ method: "POST", url: "/admin/login", headers: FORM, payload: new URLSearchParams({ token }).toString() });
}

async function page(query = "", headers: InjectOptions["headers"] = { cookie }) {
  return app.inject({ method: "GET", url: `/admin${query}`, headers });
}

/** The idInstance column of the page's table. */
function shownIds(html: string): string[] {
  return [...html.matchAll(/<tr data-id="(\d+)">/g)].map((m) => m[1]!);
}

function numberOf(html: string, id: string): number {
  const m = new RegExp(`id="n-${id}" data-value="(\\d+)"`).exec(html);
  if (!m) throw new Error(`no header number ${id}`);
  return Number(m[1]);
}

async function rowCounts(): Promise<Record<string, number>> {
  const { rows } = await ctx.sql.query<Record<string, number>>(
    `SELECT (SELECT count(*) FROM "QrSession")::int AS sessions, (SELECT count(*) FROM "Instance")::int AS instances,
       (SELECT count(*) FROM "StateEpisode")::int AS episodes, (SELECT max("updatedAt")::text FROM "Instance") AS touched`,
  );
  return rows[0]!;
}

beforeAll(async () => {
  ({ ctx, app, close } = await startHttp());
  fleet = await insertMixedFleet(ctx, 120);
  await runningSession(ctx, fleet.instances[0]!.id);
  await ctx.db.operator.create({
    data: {
      name: "night desk",
      channels: {
        create: [
          { kind: "email", address: "healthy@example.com" },
          { kind: "email", address: "bouncing@example.com", failingSince: new Date(Date.now() - 3_600_000) },
          { kind: "webhook", address: "https://hooks.example.com/gone", enabled: false, disabledReason: "410 Gone", disabledAt: new Date() },
        ],
      },
    },
  });
  const res = await logIn(ADMIN_TOKEN);
  cookie = String(res.headers["set-cookie"]).split(";")[0]!;
});
afterAll(async () => close());

describe("dashboard login", () => {
  it("shows only the login form without a session cookie", async () => {
    const res = await page("", {});
    expect(res.statusCode).toBe(200);
    expect(res.body).toContain('action="/admin/login"');
    expect(res.body).not.toContain(fleet.instances[0]!.idInstance);
    expect(res.body).not.toContain('id="numbers"');
    const forged = await page("", { cookie: "qrfleet_admin=9999999999.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" });
    expect(forged.body).toContain('action="/admin/login"');
  });

  it("refuses a wrong token with 401, the form again and a message; sets no cookie", async () => {
    const res = await logIn("wrong-token-0123456789");
    expect(res.statusCode).toBe(401);
    expect(res.body).toContain("Wrong admin token");
    expect(res.body).toContain('action="/admin/login"');
    expect(res.headers["set-cookie"]).toBeUndefined();
  });

  it("sets an HttpOnly, SameSite=Strict cookie on /admin that is not the token, then shows the fleet", async () => {
    const res = await logIn(ADMIN_TOKEN);
    expect(res.statusCode).toBe(303);
    expect(res.headers.location).toBe("/admin");
    const header = String(res.headers["set-cookie"]);
    expect(header).toMatch(/^qrfleet_admin=[A-Za-z0-9_-]{22}\.\d+\.[A-Za-z0-9_-]{43}; /);
    expect(header).toContain("HttpOnly");
    expect(header).toContain("SameSite=Strict");
    expect(header).toContain("Path=/admin");
    expect(header).not.toContain("Secure");
    expect(header).not.toContain(ADMIN_TOKEN);
    expect(header).not.toContain(Buffer.from(ADMIN_TOKEN).toString("base64url"));
    const shown = await page("", { cookie: header.split(";")[0]! });
    expect(shown.body).toContain('id="numbers"');
    expect(shown.body).not.toContain(ADMIN_TOKEN);
  });

  it("takes the bearer token too; logging out clears the cookie, and the same cookie sent again is refused on every daemon", async () => {
    expect((await page("", auth)).body).toContain('id="instances"');
    const mine = String((await logIn(ADMIN_TOKEN)).headers["set-cookie"]).split(";")[0]!;
    expect((await page("", { cookie: mine })).body).toContain('id="instances"');
    const out = await app.inject({ method: "POST", url: "/admin/logout", headers: { ...FORM, cookie: mine } });
    expect(out.statusCode).toBe(303);
    expect(String(out.headers["set-cookie"])).toMatch(/^qrfleet_admin=; .*Max-Age=0/);
    expect((await page("", { cookie: mine })).body).not.toContain('id="instances"');
    const other = await startHttp({ QRFLEET_REDIS_PREFIX: ctx.config.QRFLEET_REDIS_PREFIX, QRFLEET_SECRET_KEY: ctx.config.QRFLEET_SECRET_KEY });
    try {
      const elsewhere = await other.app.inject({ method: "GET", url: "/admin", headers: { cookie: mine } });
      expect(elsewhere.body).not.toContain('id="instances"');
      expect((await other.app.inject({ method: "GET", url: "/admin", headers: { cookie } })).body).toContain('id="instances"');
    } finally {
      await other.close();
    }
    expect((await page("", { cookie })).body).toContain('id="instances"'); // another login is not logged out
  });
});

describe("the login cookie", () => {
  it("stops working when the admin token or the secret key changes, when it expires, and when any part is altered", () => {
    const secretKey = randomBytes(32);
    const key = adminCookieKey(secretKey, ADMIN_TOKEN);
    const value = makeAdminCookieValue(key);
    expect(readAdminCookieValue(key, value)).not.toBeNull();
    expect(readAdminCookieValue(adminCookieKey(secretKey, "a-rotated-admin-token-9876"), value)).toBeNull();
    expect(readAdminCookieValue(adminCookieKey(randomBytes(32), ADMIN_TOKEN), value)).toBeNull();
    expect(readAdminCookieValue(key, value, Date.now() + 13 * 3_600_000)).toBeNull();
    const [session, expiry, mac] = value.split(".");
    expect(readAdminCookieValue(key, `${session}.${Number(expiry) + 3600}.${mac}`)).toBeNull();
    expect(readAdminCookieValue(key, `${randomBytes(16).toString("base64url")}.${expiry}.${mac}`)).toBeNull();
  });

  it("is Secure when the public URL is https", () => {
    const req = { protocol: "http" } as Parameters<typeof setCookieHeader>[0];
    expect(setCookieHeader(req, "https://fleet.example.com", "v", 60)).toMatch(/; Secure$/);
    expect(setCookieHeader(req, "http://localhost:8080", "v", 60)).not.toContain("Secure");
  });
});

describe("dashboard page", () => {
  it("shows the same fleet numbers as GET /api/status", async () => {
    const [html, api] = await Promise.all([page(), app.inject({ method: "GET", url: "/api/status", headers: auth })]);
    const status = api.json();
    expect(numberOf(html.body, "total")).toBe(status.instances.total);
    expect(numberOf(html.body, "attention")).toBe(status.instances.attention);
    for (const [state, n] of Object.entries(status.instances.byState)) expect(numberOf(html.body, `state-${state}`)).toBe(n);
    expect(numberOf(html.body, "running")).toBe(status.sessions.running);
    expect(numberOf(html.body, "queued")).toBe(status.sessions.queued);
    expect(numberOf(html.body, "alerts")).toBe(status.alertsOpen);
    expect(numberOf(html.body, "failing")).toBe(status.channels.failing);
    expect(numberOf(html.body, "disabled")).toBe(status.channels.disabled);
    expect(Math.abs(numberOf(html.body, "unlinked") - status.instances.longestUnlinkedSeconds)).toBeLessThanOrEqual(1);
  });

  it("pages 50 at a time, longest unlinked first, and narrows by state, text and open alert", async () => {
    const first = shownIds((await page()).body);
    expect(first).toHaveLength(50);
    const loggedOut = fleet.instances.filter((i) => i.state === "notAuthorized");
    // Inserted with growing unlinked time: the last inserted has been unlinked the longest.
    expect(first[0]).toBe(loggedOut.at(-1)!.idInstance);
    const third = shownIds((await page("?page=3")).body);
    expect(third).toHaveLength(20);
    expect(new Set([...first, ...third]).size).toBe(70);
    expect(shownIds((await page("?page=9")).body)).toEqual([]);

    const blocked = shownIds((await page("?state=blocked")).body);
    expect(new Set(blocked)).toEqual(new Set(fleet.instances.filter((i) => i.state === "blocked").map((i) => i.idInstance)));
    const never = shownIds((await page("?state=unchecked")).body);
    expect(new Set(never)).toEqual(new Set(fleet.instances.filter((i) => i.state === null).map((i) => i.idInstance)));
    expect(shownIds((await page("?alert=1")).body).sort()).toEqual([...blocked].sort());

    const one = fleet.instances[42]!;
    expect(shownIds((await page(`?q=${encodeURIComponent(one.label.toLowerCase())}`)).body)).toEqual([one.idInstance]);
    expect(shownIds((await page(`?q=${one.idInstance}`)).body)).toEqual([one.idInstance]);
    expect((await page("?q=nobody-has-this")).body).toContain("No instance matches.");
  });

  it("lists the failing and disabled channels, and only those", async () => {
    const html = (await page()).body;
    const section = html.slice(html.indexOf('<table id="channels">'), html.indexOf('<h2 id="operators-heading">'));
    expect(section).toContain("bouncing@example.com");
    expect(section).toContain("failing since 1h ago");
    expect(section).toContain("https://hooks.example.com/gone");
    expect(section).toContain("disabled: 410 Gone");
    expect(section).not.toContain("healthy@example.com");
    expect(numberOf(html, "failing")).toBe(1);
    expect(numberOf(html, "disabled")).toBe(1);
  });

  it("links a running session's row to its live page, in a new tab", async () => {
    const first = fleet.instances[0]!;
    const html = (await page(`?q=${first.idInstance}`)).body;
    expect(html).toMatch(/running \(attempt 1\/3\) <a class="live" href="http:\/\/localhost:8080\/live\/[A-Za-z0-9_-]+" target="_blank"/);
  });

  it("answers garbage filters with a readable 400 page", async () => {
    const bad = ["?state=sideways", "?q=a%00b", "?page=-1", "?page=abc", "?page=0", `?q=${"x".repeat(5000)}`, "?state=blocked&state=authorized", "?sort=label"];
    for (const query of bad) {
      const res = await page(query);
      expect(res.statusCode, query).toBe(400);
      expect(res.headers["content-type"], query).toMatch(/^text\/html/);
      expect(res.body, query).toContain("Bad request");
    }
  });

  it("changes nothing in the database on any GET", async () => {
    const before = await rowCounts();
    for (const url of ["", "?state=notAuthorized", "?page=2", "?alert=1"]) await page(url);
    await page("", {});
    await app.inject({ method: "GET", url: `/admin/instances/${fleet.instances[5]!.id}/start`, headers: { cookie } });
    expect(await rowCounts()).toEqual(before);
  });
});

describe("starting a session", () => {
  const startUrl = (id: string) => `/admin/instances/${id}/start`;
  const sessionsOf = (instanceId: string) => ctx.db.qrSession.findMany({ where: { instanceId } });

  it("refuses a cross-origin or anonymous POST and creates nothing", async () => {
    const id = fleet.instances[3]!.id;
    const forged = [
      { "sec-fetch-site": "cross-site", cookie },
      { origin: "https://evil.example", cookie },
      { "sec-fetch-site": "same-site", cookie },
    ];
    for (const headers of forged) {
      const res = await app.inject({ method: "POST", url: startUrl(id), headers: { "content-type": "application/x-www-form-urlencoded", ...headers }, payload: "" });
      expect(res.statusCode).toBe(403);
    }
    const anonymous = await app.inject({ method: "POST", url: startUrl(id), headers: FORM, payload: "" });
    expect(anonymous.statusCode).toBe(401);
    expect(await sessionsOf(id)).toEqual([]);
  });

  it("creates exactly one admin session; a second press returns the open one", async () => {
    const id = fleet.instances[3]!.id;
    const first = await app.inject({ method: "POST", url: startUrl(id), headers: { ...FORM, cookie }, payload: "" });
    expect(first.statusCode).toBe(201);
    expect(first.body).toContain("Session queued");
    const second = await app.inject({ method: "POST", url: startUrl(id), headers: { ...auth, "content-type": "application/json" }, payload: "{}" });
    expect(second.statusCode).toBe(200);
    expect(second.json()).toMatchObject({ created: false, session: { instanceId: id, status: "queued", trigger: "admin" } });
    const sessions = await sessionsOf(id);
    expect(sessions).toHaveLength(1);
    expect(sessions[0]).toMatchObject({ trigger: "admin", status: "queued" });
  });

  it("says 404 for an unknown instance and 400 for a body the button never sends", async () => {
    const unknown = await app.inject({ method: "POST", url: startUrl("00000000-0000-4000-8000-000000000000"), headers: { ...FORM, cookie }, payload: "" });
    expect(unknown.statusCode).toBe(404);
    const extra = await app.inject({ method: "POST", url: startUrl(fleet.instances[4]!.id), headers: { ...FORM, cookie }, payload: "trigger=schedule" });
    expect(extra.statusCode).toBe(400);
    expect(await sessionsOf(fleet.instances[4]!.id)).toEqual([]);
  });
});

describe("a channel's delivery mode", () => {
  const modeUrl = (id: string) => `/admin/channels/${id}/mode`;
  const healthy = () => ctx.db.channel.findFirstOrThrow({ where: { address: "healthy@example.com" } });

  it("lists every operator's channels with their mode, the default marked as such", async () => {
    const html = (await page()).body;
    const { id } = await healthy();
    const row = new RegExp(`<tr data-channel="${id}"><td>night desk</td><td>whole fleet</td><td>email</td><td>healthy@example.com</td><td class="mode">digest \\(default\\)</td>`);
    expect(html).toMatch(row);
  });

  it("sets it from the form and back to the default, and refuses a forged, anonymous or unknown change", async () => {
    const { id } = await healthy();
    const set = await app.inject({ method: "POST", url: modeUrl(id), headers: { ...FORM, cookie }, payload: "mode=immediate" });
    expect(set.statusCode).toBe(303);
    expect(set.headers.location).toBe("/admin#operators-heading");
    expect((await healthy()).mode).toBe("immediate");
    expect((await page()).body).toContain(`<td class="mode">immediate</td>`);

    for (const headers of [{ "sec-fetch-site": "cross-site", cookie }, { origin: "https://evil.example", cookie }]) {
      const res = await app.inject({ method: "POST", url: modeUrl(id), headers: { "content-type": "application/x-www-form-urlencoded", ...headers }, payload: "mode=digest" });
      expect(res.statusCode).toBe(403);
    }
    expect((await app.inject({ method: "POST", url: modeUrl(id), headers: FORM, payload: "mode=digest" })).statusCode).toBe(401);
    const bad = await app.inject({ method: "POST", url: modeUrl(id), headers: { ...FORM, cookie }, payload: "mode=hourly" });
    expect(bad.statusCode).toBe(400);
    expect(bad.body).toContain("mode: must be one of immediate, digest, default");
    expect((await app.inject({ method: "POST", url: modeUrl("00000000-0000-4000-8000-000000000000"), headers: { ...FORM, cookie }, payload: "mode=digest" })).statusCode).toBe(404);
    expect((await healthy()).mode).toBe("immediate");

    const back = await app.inject({ method: "POST", url: modeUrl(id), headers: { ...FORM, cookie }, payload: "mode=default" });
    expect(back.statusCode).toBe(303);
    expect((await healthy()).mode).toBeNull();
  });
});
