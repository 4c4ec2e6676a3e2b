import { createServer } from "node:net";
import type { AddressInfo } from "node:net";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { Webhook } from "standardwebhooks";
import { sendDelivery, type DeliveryResult } from "../../src/notify/deliver.js";
import { verifyLiveToken } from "../../src/notify/live-link.js";
import type { InstanceEventType } from "../../src/notify/types.js";
import { testDb } from "../support/db.js";
import { startReceiver, type Receiver } from "../support/receiver.js";
import { addQr, box, cleanupOperators, decodeQr, deps, makeInstance, makeOperator, makeSession, noMailer, PUBLIC_URL, record } from "./fixtures.js";

const db = testDb();
const operators: string[] = [];
let receiver: Receiver;
beforeAll(async () => {
  receiver = await startReceiver();
});
afterEach(() => cleanupOperators(db, operators));
afterAll(async () => {
  await receiver.close();
  await db.$disconnect();
});

/** An instance with a running session and one webhook operator; `hook` scopes requests to this test. */
async function scene(opts: { url?: string } = {}) {
  const { instance, token } = await makeInstance(db);
  const session = await makeSession(db, instance.id);
  const hook = opts.url ?? `${receiver.url}/${instance.id}`;
  const added = await makeOperator(db, instance.id, { webhook: hook });
  operators.push(added.operator.id);
  const requests = () => receiver.requests.filter((r) => r.path.endsWith(instance.id));
  return { instance, token, session, secret: added.webhookSecret!, requests };
}

async function outcome(s: Awaited<ReturnType<typeof scene>>, type: InstanceEventType = "session.timed_out") {
  const [id] = await record(db, { type, instanceId: s.instance.id, sessionId: s.session.id, attempt: 1, data: { attempts: 1 } });
  return id!;
}

/** Runs the delivery like the notify worker would, advancing a clock by each retryInMs. */
async function runToEnd(id: string, overrides = {}): Promise<DeliveryResult[]> {
  const results: DeliveryResult[] = [];
  let now = new Date();
  for (let i = 0; i < 20; i++) {
    const r = await sendDelivery(deps(db, noMailer, overrides), id, now);
    results.push(r);
    if (r.status !== "retry") break;
    now = new Date(now.getTime() + r.retryInMs!);
  }
  return results;
}

async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

const statuses = (rs: DeliveryResult[]) => rs.map((r) => r.status);
const headers = (h: Record<string, unknown>) => h as Record<string, string>;

describe("webhook deliveries", () => {
  it("posts a qr.updated that verifies with standardwebhooks and carries the QR and the live link", async () => {
    const s = await scene();
    const qr = await addQr(db, s.session.id, 1);
    const [id] = await record(db, {
      type: "qr.updated", instanceId: s.instance.id, sessionId: s.session.id, attempt: 1, qrSequence: 1, firstOfAttempt: true, data: { sequence: 1 },
    });
    expect(await sendDelivery(deps(db, noMailer), id!)).toEqual({ status: "sent" });

    const [req] = s.requests();
    expect(req!.headers["content-type"]).toBe("application/json");
    expect(req!.headers["webhook-id"]).toBe(`msg_${id}`);
    const body = new Webhook(s.secret).verify(req!.body, headers(req!.headers)) as { type: string; timestamp: string; data: Record<string, unknown> };
    expect(body.type).toBe("qr.updated");
    expect(new Date(body.timestamp).toISOString()).toBe(body.timestamp);
    expect(body.data).toMatchObject({
      instanceId: s.instance.id, idInstance: s.instance.idInstance, label: s.instance.label, sessionId: s.session.id, attempt: 1, sequence: 1,
    });
    expect(typeof body.data.expiresAt).toBe("string");
    const png = Buffer.from(String(body.data.qr).replace(/^data:image\/png;base64,/, ""), "base64");
    expect(png.equals(qr.png)).toBe(true);
    const link = String(body.data.liveUrl);
    expect(link.startsWith(`${PUBLIC_URL}/live/`)).toBe(true);
    expect(verifyLiveToken(box.hmacKey(), link.split("/live/")[1]!)).toMatchObject({ ok: true, instanceId: s.instance.id });
    expect(req!.body).not.toContain(s.token);
    expect(() => new Webhook(s.secret).verify(req!.body.replace('"attempt":1', '"attempt":2'), headers(req!.headers))).toThrow();

    const row = await db.delivery.findUniqueOrThrow({ where: { id: id! } });
    expect(row).toMatchObject({ status: "sent", tries: 1, responseStatus: 200, responseBody: "ok", lastError: null });
    expect(row.sentAt).toBeInstanceOf(Date);
  });

  it("retries after 500s with the same webhook-id and the same body, then records the send", async () => {
    const s = await scene();
    const id = await outcome(s);
    receiver.script({ status: 500, body: "boom" }, { status: 503 });
    const results = await runToEnd(id);
    expect(statuses(results)).toEqual(["retry", "retry", "sent"]);
    expect(results[0]!.retryInMs).toBe(5); // 5 s, scaled by 0.001
    expect(results[1]!.retryInMs).toBe(300); // 5 min, scaled
    const reqs = s.requests();
    expect(reqs).toHaveLength(3);
    expect(new Set(reqs.map((r) => r.headers["webhook-id"]))).toEqual(new Set([`msg_${id}`]));
    expect(new Set(reqs.map((r) => r.body)).size).toBe(1);
    for (const r of reqs) expect(() => new Webhook(s.secret).verify(r.body, headers(r.headers))).not.toThrow();
    const body = JSON.parse(reqs[0]!.body);
    expect(body).toMatchObject({ type: "session.timed_out", data: { final: true, instanceId: s.instance.id, status: "running" } });
    expect(await db.delivery.findUniqueOrThrow({ where: { id } })).toMatchObject({ status: "sent", tries: 3, responseStatus: 200 });
  });

  it("fails at once on a 400 or a 410, with no retry", async () => {
    for (const status of [400, 410]) {
      const s = await scene();
      const id = await outcome(s, "session.authorized");
      receiver.script({ status, body: "no such hook" });
      expect(statuses(await runToEnd(id))).toEqual(["failed"]);
      expect(s.requests()).toHaveLength(1);
      expect(await db.delivery.findUniqueOrThrow({ where: { id } })).toMatchObject({
        status: "failed", tries: 1, responseStatus: status, responseBody: "no such hook", lastError: `webhook answered ${status}`,
      });
    }
  });

  it("fails at once, with a reason and no request, for a stored URL with credentials or a link-local host", async () => {
    for (const url of [`${receiver.url.replace("http://", "http://user:pw@")}/creds`, "http://169.254.169.254/latest/meta-data"]) {
      const s = await scene();
      // Stored before addresses were checked: an operator can no longer add one.
      await db.channel.updateMany({ where: { kind: "webhook", operator: { assignments: { some: { instanceId: s.instance.id } } } }, data: { address: url } });
      const id = await outcome(s);
      expect(await sendDelivery(deps(db, noMailer), id)).toEqual({ status: "failed" });
      const row = await db.delivery.findUniqueOrThrow({ where: { id } });
      expect(row).toMatchObject({ status: "failed", tries: 1, lastError: expect.stringMatching(/^the webhook URL must not/) });
    }
    expect(receiver.requests.filter((r) => r.path.endsWith("/creds"))).toHaveLength(0);
  });

  it("retries 429 and 408", async () => {
    const s = await scene();
    const id = await outcome(s, "session.already_logged");
    receiver.script({ status: 429 }, { status: 408 });
    expect(statuses(await runToEnd(id))).toEqual(["retry", "retry", "sent"]);
    expect(s.requests()).toHaveLength(3);
  });

  it("treats a receiver that never answers as a timeout to retry", async () => {
    const s = await scene();
    const id = await outcome(s);
    receiver.script("hang");
    const first = await sendDelivery(deps(db, noMailer, { webhookTimeoutMs: 300 }), id);
    expect(first.status).toBe("retry");
    const row = await db.delivery.findUniqueOrThrow({ where: { id } });
    expect(row).toMatchObject({ status: "pending", tries: 1, responseStatus: null });
    expect(row.lastError).toMatch(/timed out after 300 ms/);
  });

  it("retries network errors and keeps secrets out of the stored error", async () => {
    const s = await scene({ url: `http://127.0.0.1:${await closedPort()}/hook?token=supersecretvalue123` });
    const id = await outcome(s);
    const r = await sendDelivery(deps(db, noMailer), id);
    expect(r.status).toBe("retry");
    const row = await db.delivery.findUniqueOrThrow({ where: { id } });
    expect(row.lastError).toMatch(/ECONNREFUSED/);
    expect(JSON.stringify(row)).not.toContain(s.secret.slice(6));
    expect(JSON.stringify(row)).not.toContain("supersecretvalue123");
  });

  it("marks an outcome failed once the whole schedule is used up (8 tries)", async () => {
    const s = await scene();
    const id = await outcome(s, "session.failed");
    receiver.script(...Array.from({ length: 8 }, () => ({ status: 502 })));
    const results = await runToEnd(id, { retry: { multiplier: 0.000001 } });
    expect(statuses(results)).toEqual([...Array(7).fill("retry"), "failed"]);
    expect(s.requests()).toHaveLength(8);
    expect(await db.delivery.findUniqueOrThrow({ where: { id } })).toMatchObject({ status: "failed", tries: 8, responseStatus: 502 });
  });

  it("never sends twice: a second run after the send is a no-op, and concurrent runs send once", async () => {
    const s = await scene();
    const id = await outcome(s);
    expect(await sendDelivery(deps(db, noMailer), id)).toEqual({ status: "sent" });
    expect(await sendDelivery(deps(db, noMailer), id)).toEqual({ status: "noop" });
    expect(s.requests()).toHaveLength(1);

    const t = await scene();
    const id2 = await outcome(t);
    const both = await Promise.all([sendDelivery(deps(db, noMailer), id2), sendDelivery(deps(db, noMailer), id2)]);
    // The loser either finds the winner's claim (retry later) or, if it loads late, the recorded send.
    expect(both.filter((r) => r.status === "sent")).toHaveLength(1);
    expect(both.filter((r) => r.status !== "sent").map((r) => r.status)).toEqual([expect.stringMatching(/^(retry|noop)$/)]);
    expect(t.requests()).toHaveLength(1);
    expect(await sendDelivery(deps(db, noMailer), id2)).toEqual({ status: "noop" });
    expect(await sendDelivery(deps(db, noMailer), "00000000-0000-4000-8000-000000000000")).toEqual({ status: "noop" });
  });

  it("expires a qr.updated whose QR was superseded or whose session ended — without sending", async () => {
    const s = await scene();
    await addQr(db, s.session.id, 1);
    const base = { type: "qr.updated" as const, instanceId: s.instance.id, sessionId: s.session.id, attempt: 1, data: {} };
    const [superseded] = await record(db, { ...base, qrSequence: 1, firstOfAttempt: true });
    await addQr(db, s.session.id, 2);
    expect(await sendDelivery(deps(db, noMailer), superseded!)).toEqual({ status: "expired" });
    const [current] = await record(db, { ...base, qrSequence: 2 });
    await db.qrSession.update({ where: { id: s.session.id }, data: { status: "authorized", endedAt: new Date() } });
    expect(await sendDelivery(deps(db, noMailer), current!)).toEqual({ status: "expired" });
    expect(s.requests()).toHaveLength(0);
    const rows = await db.delivery.findMany({ where: { id: { in: [superseded!, current!] } } });
    expect(rows.map((r) => r.status)).toEqual(["expired", "expired"]);
    expect(rows.map((r) => r.tries)).toEqual([0, 0]);
  });

  it("expires a failing qr.updated when the next retry would come after its validity", async () => {
    const s = await scene();
    // Received 17.5 s ago: 2.5 s of its 20 s left.
    await addQr(db, s.session.id, 1, 1, new Date(Date.now() - 17_500));
    const [id] = await record(db, {
      type: "qr.updated", instanceId: s.instance.id, sessionId: s.session.id, attempt: 1, qrSequence: 1, data: {},
    });
    receiver.fallback({ status: 500 });
    try {
      const results = await runToEnd(id!, { retry: { multiplier: 1 } });
      expect(statuses(results)).toEqual(["retry", "expired"]);
      expect(results[0]!.retryInMs).toBe(1000);
    } finally {
      receiver.fallback({ status: 200, body: "ok" });
    }
    expect(await db.delivery.findUniqueOrThrow({ where: { id: id! } })).toMatchObject({ status: "expired", tries: 2 });
  });

  it("stores at most 1 KB of the receiver's answer", async () => {
    const s = await scene();
    const id = await outcome(s);
    receiver.script({ status: 200, body: "x".repeat(50_000) });
    await sendDelivery(deps(db, noMailer), id);
    const row = await db.delivery.findUniqueOrThrow({ where: { id } });
    expect(row.responseBody!.length).toBe(1024);
  });

  it("decodes the posted QR image to the stored QR content", async () => {
    const s = await scene();
    const qr = await addQr(db, s.session.id, 1);
    const [id] = await record(db, { type: "qr.updated", instanceId: s.instance.id, sessionId: s.session.id, attempt: 1, qrSequence: 1, data: {} });
    await sendDelivery(deps(db, noMailer), id!);
    const data = JSON.parse(s.requests()[0]!.body).data;
    expect(decodeQr(Buffer.from(data.qr.split(",")[1], "base64")).content).toBe(qr.content);
  });
});
