import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sessionJobId } from "../../src/queues.js";
import { newIdInstance, newToken } from "../support/fleet.js";
import { ADMIN_TOKEN, Recorder, startHttp, type TestFleet } from "./harness.js";

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

async function addInstance(): Promise<{ id: string; idInstance: string }> {
  const token = newToken();
  secrets.push(token);
  const res = await http.api("POST", "/api/instances", { apiUrl: "https://7103.api.greenapi.com", idInstance: newIdInstance(), token });
  expect(res.statusCode).toBe(201);
  return res.json();
}

describe("sessions through the API", () => {
  it("creates a session once (201) and returns the open one after (200), with its job in Redis", async () => {
    const inst = await addInstance();
    const first = await http.request({ method: "POST", url: `/api/instances/${inst.idInstance}/sessions`, headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    expect(first.statusCode).toBe(201);
    const session = first.json();
    expect(session).toMatchObject({ instanceId: inst.id, idInstance: inst.idInstance, trigger: "admin", status: "queued", attempt: 1 });

    const second = await http.api("POST", `/api/instances/${inst.id}/sessions`, {});
    expect(second.statusCode).toBe(200);
    expect(second.json().id).toBe(session.id);

    const job = await ctx.queues.session.getJob(sessionJobId(session.id, 1));
    expect(job?.data).toEqual({ sessionId: session.id, attempt: 1 });

    const shown = await http.api("GET", `/api/sessions/${session.id}`);
    expect(shown.json()).toMatchObject({ id: session.id, attempts: [] });
    const listed = await http.api("GET", `/api/sessions?instance=${inst.idInstance}&status=queued`);
    expect(listed.json().sessions.map((s: { id: string }) => s.id)).toEqual([session.id]);
  });

  it("creates exactly one session when 30 requests race for it", async () => {
    const inst = await addInstance();
    const responses = await Promise.all(
      Array.from({ length: 30 }, () => http.api("POST", `/api/instances/${inst.id}/sessions`)),
    );
    expect(responses.filter((r) => r.statusCode === 201)).toHaveLength(1);
    expect(responses.filter((r) => r.statusCode === 200)).toHaveLength(29);
    expect(new Set(responses.map((r) => r.json().id)).size).toBe(1);
    expect(await ctx.db.qrSession.count({ where: { instanceId: inst.id } })).toBe(1);
  });

  it("starts sessions in bulk: for given instances, or every unlinked one, each with its job, none twice", async () => {
    const [a, b, linked] = await Promise.all([addInstance(), addInstance(), addInstance()]);
    await ctx.db.instance.update({ where: { id: linked.id }, data: { lastState: "authorized" } });
    const unknown = "00000000-0000-4000-8000-000000000000";
    const byIds = await http.api("POST", "/api/sessions", { instances: [a.id, a.id, unknown] });
    expect(byIds.statusCode).toBe(200);
    expect(byIds.json()).toEqual({ created: 1, alreadyOpen: 0, notFound: 1 });

    const all = await http.api("POST", "/api/sessions", { allUnlinked: true });
    expect(all.statusCode).toBe(200);
    expect(all.json().created).toBeGreaterThanOrEqual(1);
    const open = await ctx.db.qrSession.findMany({ where: { instanceId: { in: [a.id, b.id, linked.id] } } });
    expect(open.map((s) => s.instanceId).sort()).toEqual([a.id, b.id].sort());
    for (const s of open) expect((await ctx.queues.session.getJob(sessionJobId(s.id, 1)))?.data).toEqual({ sessionId: s.id, attempt: 1 });
    expect((await http.api("POST", "/api/sessions", { allUnlinked: true })).json().created).toBe(0);

    for (const garbage of [{}, { allUnlinked: false }, { instances: [] }, { instances: ["not-an-id"] }, { allUnlinked: true, instances: [a.id] }, ["all"]]) {
      const res = await http.api("POST", "/api/sessions", garbage);
      expect(res.statusCode, JSON.stringify(garbage)).toBe(400);
      expect(res.json().error.code).toBe("invalid_input");
    }
  });

  it("cancels an open session and removes its queued job", async () => {
    const inst = await addInstance();
    const session = (await http.api("POST", `/api/instances/${inst.id}/sessions`)).json();
    const cancelled = await http.api("POST", `/api/sessions/${session.id}/cancel`);
    expect(cancelled.statusCode).toBe(200);
    expect(cancelled.json()).toMatchObject({ id: session.id, status: "cancelled", errorCode: "cancelled" });
    expect(cancelled.json().endedAt).toMatch(/Z$/);
    expect(await ctx.queues.session.getJob(sessionJobId(session.id, 1))).toBeUndefined();

    const again = await http.api("POST", `/api/instances/${inst.id}/sessions`);
    expect(again.statusCode).toBe(201);
    expect(again.json().id).not.toBe(session.id);
  });

  it("answers 404 for unknown sessions and instances, 400 for a bad filter or body", async () => {
    expect((await http.api("GET", "/api/sessions/not-a-session")).statusCode).toBe(404);
    expect((await http.api("POST", "/api/sessions/00000000-0000-4000-8000-000000000000/cancel")).statusCode).toBe(404);
    expect((await http.api("POST", `/api/instances/${newIdInstance()}/sessions`)).statusCode).toBe(404);
    const badStatus = await http.api("GET", "/api/sessions?status=sleeping");
    expect(badStatus.statusCode).toBe(400);
    expect(badStatus.json().error.message).toMatch(/status: must be one of/);
    const inst = await addInstance();
    const badBody = await http.api("POST", `/api/instances/${inst.id}/sessions`, { trigger: "schedule" });
    expect(badBody.statusCode).toBe(400);
    expect(badBody.json().error.code).toBe("invalid_input");
  });
});

// Runs last (vitest keeps file order): every body any test above received.
it("never returned a token in a response body", () => {
  expect(http.bodies.length).toBeGreaterThan(10);
  for (const body of http.bodies) for (const secret of secrets) expect(body).not.toContain(secret);
});
