import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { newIdInstance } from "../support/fleet.js";
import { ADMIN_TOKEN, type Recorder, type TestFleet } from "./harness.js";
import { startHookedHttp, stateChanged, type ProviderHooks } from "./provider-hooks.js";

let ctx: TestFleet;
let close: () => Promise<void>;
let http: Recorder;
let provider: ProviderHooks;

beforeAll(async () => void ({ ctx, http, provider, close } = await startHookedHttp()));
afterAll(async () => close());

const addInstance = (withHookToken = true) => provider.addInstance(withHookToken);
const hook = (payload: unknown, authorization?: string) => provider.hook(payload, authorization);

describe("POST /hooks/greenapi", () => {
  it("refuses a missing or wrong Authorization, an instance without a webhook token and an unknown one, all alike", async () => {
    const inst = await addInstance();
    const open = await addInstance(false);
    const calls: Array<[string, string | undefined]> = [
      ...[undefined, "Bearer not-the-token", ADMIN_TOKEN, `Bearer ${ADMIN_TOKEN}`].map((a): [string, string | undefined] => [inst.idInstance, a]),
      [open.idInstance, "Bearer anything-at-all"],
      [newIdInstance(), "Bearer anything-at-all"],
    ];
    const answers = new Set<string>();
    for (const [idInstance, authorization] of calls) {
      const res = await hook(stateChanged(idInstance, "notAuthorized"), authorization);
      expect(res.statusCode).toBe(401);
      expect(res.json().error.code).toBe("unauthorized");
      answers.add(res.body);
    }
    // Nothing tells an unknown idInstance from a known one, or a wrong token from a missing one.
    expect(answers.size).toBe(1);
    expect(await ctx.db.qrSession.count({ where: { instanceId: { in: [inst.id, open.id] } } })).toBe(0);
  });

  it("refuses, alike and without a 500, a caller whose instance's stored webhook token opens under no key", async () => {
    const inst = await addInstance();
    const foreign = new Uint8Array(randomBytes(60));
    await ctx.db.instance.update({ where: { id: inst.id }, data: { webhookTokenCiphertext: foreign } });
    const res = await hook(stateChanged(inst.idInstance, "notAuthorized"), `Bearer ${inst.hookToken}`);
    expect(res.statusCode).toBe(401);
    const wrong = await hook(stateChanged(newIdInstance(), "notAuthorized"), "Bearer anything-at-all");
    expect(res.body).toBe(wrong.body);
    expect(await ctx.db.qrSession.count({ where: { instanceId: inst.id } })).toBe(0);
  });

  it("acknowledges unknown webhook types and ignores them", async () => {
    const res = await hook({ typeWebhook: "incomingMessageReceived", instanceData: { idInstance: 1 }, timestamp: 1 });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ handled: false, typeWebhook: "incomingMessageReceived", instances: [] });
  });

  it("answers 400 for a garbage body", async () => {
    const garbage = await http.request({ method: "POST", url: "/hooks/greenapi", headers: { "content-type": "application/json" }, payload: "{{{" });
    expect(garbage.statusCode).toBe(400);
    expect(garbage.json().error.code).toBe("invalid_json");
    for (const body of [[1, 2], { hello: "world" }, { typeWebhook: "stateInstanceChanged", instanceData: { idInstance: "x1" }, timestamp: "soon" }]) {
      const res = await hook(body, "Bearer whatever-token");
      expect(res.statusCode).toBe(400);
      expect(res.json().error.code).toBe("invalid_input");
    }
  });

  it("queues a session on notAuthorized and records the state", async () => {
    const inst = await addInstance();
    const res = await hook(stateChanged(inst.idInstance, "notAuthorized"), `Bearer ${inst.hookToken}`);
    expect(res.statusCode).toBe(200);
    const [result] = res.json().instances;
    expect(result).toMatchObject({ instanceId: inst.id, action: "enqueued", sessionId: expect.any(String) });
    const session = await ctx.db.qrSession.findUniqueOrThrow({ where: { id: result.sessionId } });
    expect(session).toMatchObject({ status: "queued", trigger: "provider" });
    const row = await ctx.db.instance.findUniqueOrThrow({ where: { id: inst.id } });
    expect(row.lastState).toBe("notAuthorized");
    expect(row.unlinkedSince).toBeInstanceOf(Date);

    // The raw token (no "Bearer") is accepted too; a repeat keeps the open session.
    const again = await hook(stateChanged(inst.idInstance, "notAuthorized"), inst.hookToken);
    expect(again.json().instances[0]).toEqual({ instanceId: inst.id, action: "already_open", sessionId: result.sessionId });
  });

  it("leaves a session whose instance expects a phone to the socket, which knows who scanned", async () => {
    const inst = await addInstance();
    await http.api("PATCH", `/api/instances/${inst.id}`, { phone: "79990000001" });
    const session = (await http.api("POST", `/api/instances/${inst.id}/sessions`)).json();
    const res = await hook(stateChanged(String(inst.idInstance), "authorized"), `Bearer ${inst.hookToken}`);
    expect(res.json().instances).toEqual([{ instanceId: inst.id, action: "recorded" }]);
    expect((await http.api("GET", `/api/sessions/${session.id}`)).json().status).toBe("queued");
  });

  it("ends the open session as authorized on authorized", async () => {
    const inst = await addInstance();
    const session = (await http.api("POST", `/api/instances/${inst.id}/sessions`)).json();
    const res = await hook(stateChanged(String(inst.idInstance), "authorized"), `Bearer ${inst.hookToken}`);
    expect(res.statusCode).toBe(200);
    expect(res.json().instances).toEqual([{ instanceId: inst.id, action: "ended_authorized", sessionId: session.id }]);
    const ended = (await http.api("GET", `/api/sessions/${session.id}`)).json();
    expect(ended.status).toBe("authorized");
    const row = await ctx.db.instance.findUniqueOrThrow({ where: { id: inst.id } });
    expect(row).toMatchObject({ lastState: "authorized", unlinkedSince: null });
  });

  it("ignores an event older than the state already recorded", async () => {
    const inst = await addInstance();
    await hook(stateChanged(inst.idInstance, "authorized"), `Bearer ${inst.hookToken}`);
    const late = await hook(stateChanged(inst.idInstance, "notAuthorized", Math.floor(Date.now() / 1000) - 600), `Bearer ${inst.hookToken}`);
    expect(late.json().instances).toEqual([{ instanceId: inst.id, action: "stale" }]);
    expect(await ctx.db.qrSession.count({ where: { instanceId: inst.id } })).toBe(0);
  });

  it("records other states without starting a session", async () => {
    const inst = await addInstance();
    const res = await hook(stateChanged(inst.idInstance, "yellowCard"), `Bearer ${inst.hookToken}`);
    expect(res.json().instances).toEqual([{ instanceId: inst.id, action: "recorded" }]);
    expect((await ctx.db.instance.findUniqueOrThrow({ where: { id: inst.id } })).lastState).toBe("yellowCard");
    expect(await ctx.db.qrSession.count({ where: { instanceId: inst.id } })).toBe(0);
  });
});

// Runs last (vitest keeps file order): every body any test above received.
it("never returned a token in a response body", () => {
  expect(http.bodies.length).toBeGreaterThan(10);
  for (const body of http.bodies) for (const secret of [ADMIN_TOKEN, ...provider.secrets]) expect(body).not.toContain(secret);
});
