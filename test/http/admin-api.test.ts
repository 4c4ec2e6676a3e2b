import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { newIdInstance, newToken } from "../support/fleet.js";
import { ADMIN_TOKEN, Recorder, startHttp, type TestFleet } from "./harness.js";

const API_URL = "https://7103.api.greenapi.com";

let ctx: TestFleet;
let app: FastifyInstance;
let close: () => Promise<void>;
let http: Recorder;
const secrets: string[] = [ADMIN_TOKEN];

beforeAll(async () => {
  ({ ctx, app, close } = await startHttp());
  http = new Recorder(app);
});
afterAll(async () => close());

function newInstance(extra: Record<string, unknown> = {}): { idInstance: string; token: string } & Record<string, unknown> {
  const token = newToken();
  secrets.push(token);
  return { apiUrl: API_URL, idInstance: newIdInstance(), token, ...extra };
}

describe("admin auth", () => {
  it("refuses a missing, wrong or non-bearer token with 401 and a JSON error", async () => {
    for (const headers of [{}, { authorization: "Bearer wrong-token-0123456789" }, { authorization: ADMIN_TOKEN }, { authorization: "Basic eDp5" }]) {
      const res = await http.request({ method: "GET", url: "/api/instances", headers });
      expect(res.statusCode).toBe(401);
      expect(res.json()).toEqual({ error: { code: "unauthorized", message: expect.any(String) } });
      expect(res.headers["www-authenticate"]).toMatch(/^Bearer/);
    }
  });

  it("asks for the token before telling whether an /api route exists", async () => {
    expect((await http.request({ method: "GET", url: "/api/nothing-here" })).statusCode).toBe(401);
    const res = await http.api("GET", "/api/nothing-here");
    expect(res.statusCode).toBe(404);
    expect(res.json().error.code).toBe("not_found");
  });

  it("answers 404 not_found as JSON for unknown routes outside /api", async () => {
    const res = await http.request({ method: "GET", url: "/nope" });
    expect(res.statusCode).toBe(404);
    expect(res.json()).toEqual({ error: { code: "not_found", message: "no such route" } });
  });
});

describe("instances", () => {
  it("adds, shows (by id and idInstance), updates, lists and removes an instance", async () => {
    const input = newInstance({ label: "front desk", webhookToken: "hook-token-" + newToken() });
    secrets.push(input.webhookToken as string);
    const created = await http.api("POST", "/api/instances", input);
    expect(created.statusCode).toBe(201);
    const view = created.json();
    expect(view).toMatchObject({ apiUrl: API_URL, idInstance: input.idInstance, label: "front desk", enabled: true, hasWebhookToken: true });
    expect(view).not.toHaveProperty("token");
    expect(view.createdAt).toMatch(/^\d{4}-\d\d-\d\dT.*Z$/);

    expect((await http.api("GET", `/api/instances/${view.id}`)).json().id).toBe(view.id);
    expect((await http.api("GET", `/api/instances/${input.idInstance}`)).json().id).toBe(view.id);

    const patched = await http.api("PATCH", `/api/instances/${input.idInstance}`, { label: "back office", enabled: false });
    expect(patched.statusCode).toBe(200);
    expect(patched.json()).toMatchObject({ id: view.id, label: "back office", enabled: false });

    const list = await http.api("GET", "/api/instances?limit=10000");
    expect(list.json().instances.map((i: { id: string }) => i.id)).toContain(view.id);

    // The stored token would follow the instance to the new host: moving it needs the token again.
    const moved = await http.api("PATCH", `/api/instances/${view.id}`, { apiUrl: "https://elsewhere.example.net" });
    expect(moved.statusCode).toBe(400);
    expect(moved.json().error.message).toMatch(/^apiUrl: moving an instance to another host needs its token again/);
    expect((await http.api("GET", `/api/instances/${view.id}`)).json().apiUrl).toBe(API_URL);
    const samePlace = await http.api("PATCH", `/api/instances/${view.id}`, { apiUrl: `${API_URL}/` });
    expect(samePlace.statusCode, samePlace.body).toBe(200);
    const withToken = await http.api("PATCH", `/api/instances/${view.id}`, { apiUrl: "https://elsewhere.example.net", token: newToken() });
    expect(withToken.statusCode, withToken.body).toBe(200);
    expect(withToken.json().apiUrl).toBe("https://elsewhere.example.net");

    expect((await http.api("DELETE", `/api/instances/${view.id}`)).statusCode).toBe(200);
    const gone = await http.api("GET", `/api/instances/${view.id}`);
    expect(gone.statusCode).toBe(404);
    expect(gone.json().error.code).toBe("not_found");
  });

  it("filters the list by state and attention", async () => {
    const a = (await http.api("POST", "/api/instances", newInstance())).json();
    await ctx.db.instance.update({ where: { id: a.id }, data: { lastState: "yellowCard", attention: "invalid_token" } });
    const byState = (await http.api("GET", "/api/instances?state=yellowCard&limit=10000")).json().instances;
    expect(byState.map((i: { id: string }) => i.id)).toContain(a.id);
    expect(new Set(byState.map((i: { lastState: string }) => i.lastState))).toEqual(new Set(["yellowCard"]));
    const needy = (await http.api("GET", "/api/instances?attention=true&limit=10000")).json().instances;
    expect(needy.map((i: { id: string }) => i.id)).toContain(a.id);
    const bad = await http.api("GET", "/api/instances?attention=maybe&limt=3");
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.message).toMatch(/attention must be true or false/);
  });

  it("answers 409 conflict for a duplicate", async () => {
    const input = newInstance();
    expect((await http.api("POST", "/api/instances", input)).statusCode).toBe(201);
    const dup = await http.api("POST", "/api/instances", input);
    expect(dup.statusCode).toBe(409);
    expect(dup.json().error.code).toBe("conflict");
  });

  it("explains bad input with 400 invalid_input", async () => {
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [newInstance({ apiUrl: "not a url" }), /apiUrl: .* is not a URL/],
      [newInstance({ idInstance: "abc" }), /idInstance must be 4 to 20 digits/],
      [newInstance({ colour: "blue" }), /colour/],
    ];
    for (const [body, message] of cases) {
      const res = await http.api("POST", "/api/instances", body);
      expect(res.statusCode).toBe(400);
      expect(res.json().error).toMatchObject({ code: "invalid_input", message: expect.stringMatching(message) });
    }
    const patch = await http.api("PATCH", `/api/instances/${newIdInstance()}`, { label: 3 });
    expect(patch.statusCode).toBe(404);
  });

  it("answers 400, not 500, for NUL bytes, escape sequences and invisible formatting in labels, names, filters and references", async () => {
    const unseen = "must not contain control or invisible formatting characters (bidi controls, zero-width characters, line separators)";
    const hostile = ["Front\u0000desk", "\u001b[2J\u001b[31mpwned", "tab\there", "Shop\u202Egnp.exe", "Front\u200Bdesk", "\u2066Desk\u2069", "two\u2028lines", "de\uFEFFsk"];
    for (const label of hostile) {
      const res = await http.api("POST", "/api/instances", newInstance({ label }));
      expect(res.statusCode, JSON.stringify(label)).toBe(400);
      expect(res.json().error).toMatchObject({ code: "invalid_input", message: `label: ${unseen}` });
    }
    for (const name of hostile) {
      const res = await http.api("POST", "/api/operators", { name, email: "ops@example.com" });
      expect(res.statusCode, JSON.stringify(name)).toBe(400);
      expect(res.json().error.message, JSON.stringify(name)).toContain(unseen);
    }
    for (const url of ["/api/instances?state=%00", "/api/operators/%00", "/api/instances/%00", "/api/sessions/%1B%5B2J", "/api/sessions?instance=%00", "/api/sessions?status=%07"]) {
      const res = await http.api("GET", url);
      expect(res.statusCode, url).toBe(400);
      expect(res.json().error.code).toBe("invalid_input");
    }
  });

  it("answers 400 invalid_json for garbage JSON, 415 for an unknown content-type and 413 for a huge body", async () => {
    const garbage = await http.request({
      method: "POST", url: "/api/instances", headers: { ...authHeader(), "content-type": "application/json" }, payload: "{not json",
    });
    expect(garbage.statusCode).toBe(400);
    expect(garbage.json().error.code).toBe("invalid_json");

    const xml = await http.request({
      method: "POST", url: "/api/instances", headers: { ...authHeader(), "content-type": "application/xml" }, payload: "<a/>",
    });
    expect(xml.statusCode).toBe(415);
    expect(xml.json().error.code).toBe("unsupported_media_type");

    const huge = await http.api("POST", "/api/instances", { ...newInstance(), label: "x".repeat(100_000) });
    expect(huge.statusCode).toBe(413);
    expect(huge.json().error.code).toBe("payload_too_large");
  });
});

describe("import", () => {
  it("imports CSV all-or-nothing and reports every bad row", async () => {
    const [a, b] = [newInstance(), newInstance()];
    const bad = await http.request({
      method: "POST",
      url: "/api/instances/import",
      headers: { ...authHeader(), "content-type": "text/csv" },
      payload: `apiUrl,idInstance,token,label\n${API_URL},${a.idInstance},${a.token},ok\nnot a url,abc,${b.token},bad\n`,
    });
    expect(bad.statusCode).toBe(400);
    const error = bad.json().error;
    expect(error).toMatchObject({ code: "invalid_input", message: "1 of 2 rows are invalid; nothing was imported" });
    expect(error.details.rows).toEqual([{ row: 2, message: expect.stringMatching(/apiUrl.*idInstance/s) }]);
    expect(await ctx.db.instance.count({ where: { idInstance: a.idInstance } })).toBe(0);

    const good = await http.request({
      method: "POST",
      url: "/api/instances/import",
      headers: { ...authHeader(), "content-type": "text/csv" },
      payload: `apiUrl,idInstance,token\n${API_URL},${a.idInstance},${a.token}\n${API_URL},${b.idInstance},${b.token}\n`,
    });
    expect(good.statusCode).toBe(201);
    expect(good.json()).toMatchObject({ created: 2, ids: [expect.any(String), expect.any(String)] });
  });

  it("imports a JSON array, refusing duplicates and existing instances row by row", async () => {
    const [a, b] = [newInstance(), newInstance()];
    await http.api("POST", "/api/instances", a);
    const res = await http.api("POST", "/api/instances/import", [b, b, a]);
    expect(res.statusCode).toBe(400);
    expect(res.json().error.details.rows).toEqual([
      { row: 2, message: "duplicate of row 1" },
      { row: 3, message: expect.stringMatching(/already exists/) },
    ]);
    expect(await ctx.db.instance.count({ where: { idInstance: b.idInstance } })).toBe(0);

    const notArray = await http.api("POST", "/api/instances/import", { rows: [] });
    expect(notArray.statusCode).toBe(400);
    expect(notArray.json().error.message).toMatch(/text\/csv|JSON array/);

    const ok = await http.api("POST", "/api/instances/import", [b]);
    expect(ok.statusCode).toBe(201);
    expect(ok.json().created).toBe(1);
  });

  it("accepts an import larger than the ordinary 64 KiB body limit", async () => {
    const rows = Array.from({ length: 800 }, () => newInstance({ label: "bulk ".repeat(10) }));
    const res = await http.api("POST", "/api/instances/import", rows);
    expect(JSON.stringify(rows).length).toBeGreaterThan(64 * 1024);
    expect(res.statusCode).toBe(201);
    expect(res.json().created).toBe(800);
  });
});

describe("operators, assignments, deliveries and status", () => {
  it("answers 400 with a sentence for a webhook URL that does not parse, and stores one in the form it will be called", async () => {
    const zoned = await http.api("POST", "/api/operators", { name: `op-${newIdInstance()}`, webhook: "http://[fe80::1%25eth0]/" });
    expect(zoned.statusCode).toBe(400);
    expect(zoned.json().error).toMatchObject({ code: "invalid_input", message: "webhook: must be an http:// or https:// URL" });
    const decimal = await http.api("POST", "/api/operators", { name: `op-${newIdInstance()}`, webhook: "http://2130706433/qr" });
    expect(decimal.statusCode).toBe(201);
    expect(decimal.json().operator.channels).toEqual([expect.objectContaining({ kind: "webhook", address: "http://127.0.0.1/qr" })]);
  });

  it("adds an operator, assigns an instance by idInstance, unassigns and removes", async () => {
    const inst = (await http.api("POST", "/api/instances", newInstance())).json();
    const name = `op-${newIdInstance()}`;
    const added = await http.api("POST", "/api/operators", { name, email: `${name}@example.org`, webhook: "https://hooks.example.org/qr" });
    expect(added.statusCode).toBe(201);
    const { operator, webhookSecret } = added.json();
    expect(webhookSecret).toMatch(/^whsec_/);
    expect(operator.channels.map((c: { kind: string }) => c.kind).sort()).toEqual(["email", "webhook"]);

    const assigned = await http.api("POST", "/api/assignments", { instance: inst.idInstance, operator: name, tier: 2 });
    expect(assigned.statusCode).toBe(201);
    expect(assigned.json()).toEqual({ instanceId: inst.id, operatorId: operator.id, tier: 2 });
    expect((await http.api("GET", `/api/operators/${name}`)).json().assignments).toEqual([{ instanceId: inst.id, tier: 2 }]);

    const badTier = await http.api("POST", "/api/assignments", { instance: inst.id, operator: name, tier: 99 });
    expect(badTier.statusCode).toBe(400);

    const unassigned = await http.api("DELETE", `/api/assignments?instance=${inst.idInstance}&operator=${name}`);
    expect(unassigned.statusCode).toBe(200);
    expect((await http.api("DELETE", "/api/assignments", { instance: inst.id, operator: name })).statusCode).toBe(404);

    expect((await http.api("GET", "/api/operators")).json().operators.map((o: { name: string }) => o.name)).toContain(name);
    expect((await http.api("DELETE", `/api/operators/${operator.id}`)).statusCode).toBe(200);
    expect((await http.api("GET", `/api/operators/${name}`)).statusCode).toBe(404);
  });

  it("sets a channel's delivery mode and back to its default, and refuses a mode or channel it does not know", async () => {
    const name = `op-${newIdInstance()}`;
    const { operator } = (await http.api("POST", "/api/operators", { name, email: `${name}@example.org` })).json();
    const id = operator.channels[0].id;
    expect(operator.channels[0]).toMatchObject({ mode: "digest", modeSet: false });
    const set = await http.api("PUT", `/api/channels/${id}/mode`, { mode: "immediate" });
    expect(set.statusCode).toBe(200);
    expect(set.json()).toMatchObject({ id, kind: "email", mode: "immediate", modeSet: true });
    expect((await http.api("GET", `/api/operators/${name}`)).json().channels[0]).toMatchObject({ mode: "immediate", modeSet: true });
    expect((await http.api("PUT", `/api/channels/${id}/mode`, { mode: "default" })).json()).toMatchObject({ mode: "digest", modeSet: false });
    const bad = await http.api("PUT", `/api/channels/${id}/mode`, { mode: "hourly" });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.message).toContain("mode");
    expect((await http.api("PUT", `/api/channels/${id}/mode`, { mode: "digest", extra: 1 })).statusCode).toBe(400);
    expect((await http.api("PUT", "/api/channels/6a3f4d8e-0000-4000-8000-000000000000/mode", { mode: "digest" })).statusCode).toBe(404);
    expect((await http.api("PUT", "/api/channels/%00/mode", { mode: "digest" })).statusCode).toBe(400);
  });

  it("adds a channel to an existing operator, once, and refuses garbage with the reason", async () => {
    const name = `op-${newIdInstance()}`;
    await http.api("POST", "/api/operators", { name, email: `${name}@example.org` });
    const added = await http.api("POST", `/api/operators/${name}/channels`, { kind: "webhook", address: "https://hooks.example.org/more" });
    expect(added.statusCode).toBe(201);
    expect(added.json()).toMatchObject({ channel: { kind: "webhook", address: "https://hooks.example.org/more" }, webhookSecret: expect.stringMatching(/^whsec_/) });
    expect((await http.api("GET", `/api/operators/${name}`)).json().channels).toHaveLength(2);
    const again = await http.api("POST", `/api/operators/${name}/channels`, { kind: "webhook", address: "https://hooks.example.org/more" });
    expect(again.statusCode).toBe(409);
    for (const body of [{ kind: "fax", address: "123" }, { kind: "email", address: "not an address" }, [1, 2], null]) {
      const res = await http.api("POST", `/api/operators/${name}/channels`, body);
      expect(res.statusCode, JSON.stringify(body)).toBe(400);
      expect(res.json().error.code).toBe("invalid_input");
    }
    expect((await http.api("POST", "/api/operators/nobody-at-all/channels", { kind: "email", address: "a@example.org" })).statusCode).toBe(404);
  });

  it("refuses a re-auth schedule that would poll the provider more than once a minute", async () => {
    for (const cron of ["* * * * * *", "*/30 * * * * *"]) {
      const res = await http.api("POST", "/api/instances", newInstance({ cron }));
      expect(res.statusCode, cron).toBe(400);
      expect(res.json().error.message).toBe(`cron: "${cron}" runs more often than once a minute`);
    }
    for (const cron of ["0 * * * * *", "*/5 * * * *"]) {
      expect((await http.api("POST", "/api/instances", newInstance({ cron }))).statusCode, cron).toBe(201);
    }
  });

  it("refuses addresses a request must not go to: link-local and metadata hosts, URLs with credentials", async () => {
    const metadata = ["http://169.254.169.254", "http://[fe80::1]", "http://[fd00:ec2::254]", "http://100.100.100.200", "http://[64:ff9b::a9fe:a9fe]",
      "http://[::ffff:169.254.169.254]", "http://[2002:a9fe:a9fe::1]", "http://[::ffff:0:0]", "http://[::]", "http://224.0.0.1"];
    for (const apiUrl of [...metadata, "http://metadata.google.internal", "http://0.0.0.0:8080", "https://user:pw@7103.api.greenapi.com"]) {
      const res = await http.api("POST", "/api/instances", newInstance({ apiUrl }));
      expect(res.statusCode, apiUrl).toBe(400);
      expect(res.json().error.message, apiUrl).toMatch(/apiUrl: .*must not (point at|contain a user name)/);
    }
    for (const webhook of ["http://user:pw@hooks.example.org/qr", "http://169.254.169.254/latest/meta-data", ...metadata]) {
      const res = await http.api("POST", "/api/operators", { name: `op-${newIdInstance()}`, webhook });
      expect(res.statusCode, webhook).toBe(400);
      expect(res.json().error.message, webhook).toMatch(/webhook: must not/);
      expect(res.body).not.toContain("pw@");
    }
    const local = await http.api("POST", "/api/instances", newInstance({ apiUrl: "http://127.0.0.1:7788" }));
    expect(local.statusCode).toBe(201);
  });

  it("masks a user name and password an older version stored in a webhook URL, wherever the channel is listed", async () => {
    const name = `op-${newIdInstance()}`;
    const added = await http.api("POST", "/api/operators", { name, webhook: "https://hooks.example.org/creds" });
    const channelId = added.json().operator.channels[0].id as string;
    await ctx.db.channel.update({ where: { id: channelId }, data: { address: "https://olduser:oldpass@hooks.example.org/creds" } });
    for (const url of [`/api/operators/${name}`, "/api/operators"]) {
      const res = await http.api("GET", url);
      expect(res.statusCode, url).toBe(200);
      expect(res.body, url).toContain("https://***@hooks.example.org/creds");
      expect(res.body, url).not.toContain("oldpass");
      expect(res.body, url).not.toContain("olduser");
    }
  });

  it("refuses a bad operator with the reason", async () => {
    const res = await http.api("POST", "/api/operators", { name: "nobody" });
    expect(res.statusCode).toBe(400);
    expect(res.json().error.message).toMatch(/give an email, a webhook or both/);
  });

  it("lists deliveries of a session and validates the filter", async () => {
    const bad = await http.api("GET", "/api/deliveries?status=lost&session=42");
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.message).toMatch(/session: must be a session id.*status: must be one of/s);
    const none = await http.api("GET", "/api/deliveries?session=00000000-0000-4000-8000-000000000000");
    expect(none.json()).toEqual({ deliveries: [] });
  });

  it("reports fleet status with instance, session and queue counts", async () => {
    const res = await http.api("GET", "/api/status");
    expect(res.statusCode).toBe(200);
    const status = res.json();
    expect(status.instances.total).toBeGreaterThan(0);
    expect(status.sessions).toHaveProperty("queued");
    expect(Object.keys(status.queues).sort()).toEqual(["notify", "qr-session", "sweep"]);
    expect(status.queues["qr-session"]).toHaveProperty("waiting");
    expect(status).toMatchObject({ alertsOpen: expect.any(Number), channels: { failing: expect.any(Number), disabled: expect.any(Number) } });
    expect(status.instances.longestUnlinkedSeconds).toBeGreaterThanOrEqual(0);
    const byState = Object.values(status.instances.byState as Record<string, number>).reduce((a, b) => a + b, 0);
    expect(byState).toBe(status.instances.total);
  });
});

function authHeader() {
  return { authorization: `Bearer ${ADMIN_TOKEN}` };
}

// Runs last (vitest keeps file order): every body any test above received.
it("never returned a token in a response body", () => {
  expect(http.bodies.length).toBeGreaterThan(10);
  for (const body of http.bodies) for (const secret of secrets) expect(body).not.toContain(secret);
});
