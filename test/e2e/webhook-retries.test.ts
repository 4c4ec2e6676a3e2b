import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { listDeliveries } from "../../src/fleet/operators/deliveries.js";
import { addOperator, assign } from "../../src/fleet/operators/operators.js";
import { enqueueSession, showSession } from "../../src/fleet/sessions/sessions.js";
import { notifyJobId } from "../../src/queues.js";
import { startSimulator, type Simulator } from "../../src/simulator/index.js";
import type { Daemon } from "../../workers/daemon.js";
import { simulatedInstance, startTestDaemon, waitFor } from "../support/fleet.js";
import { startReceiver, type Receiver } from "../support/receiver.js";
import { verified } from "./support.js";

/**
 * Outcome webhooks that fail. The daemon sends each first try itself, right after recording the
 * outcome; a retry goes through the notify queue in real Redis. The retry schedule is scaled by
 * 0.001 (outcomes wait 5 s, then 5 min, … at full scale).
 */

let sim: Simulator;
let receiver: Receiver;
let d: Daemon;

beforeAll(async () => {
  sim = await startSimulator({ defaults: { fate: "scan", rotationMs: 300, scanAfterMs: 700, scanWindowMs: 2500 } });
  receiver = await startReceiver();
  d = await startTestDaemon({ QRFLEET_DELIVERY_RETRY_MULTIPLIER: "0.001", QRFLEET_WEBHOOK_TIMEOUT_MS: "2000", QRFLEET_DELIVERY_LEASE_MS: "7000" });
});
afterAll(async () => {
  await d?.close();
  await Promise.all([sim?.close(), receiver?.close()]);
});

/** One instance the simulator scans, with a webhook-only operator; `run` returns its verified requests once every delivery is final. */
async function scanned() {
  const fleet = d.ctx;
  const instance = await simulatedInstance(fleet, sim, {});
  const { idInstance } = instance;
  const url = `${receiver.url}?instance=${idInstance}`;
  const added = await addOperator({ db: d.ctx.db, box: fleet.box }, { name: `hooks-${idInstance}`, webhook: url });
  await assign(d.ctx, instance.id, added.operator.id);
  const mine = (path: string) => path === url.slice(url.indexOf("/hook"));
  const run = async () => {
    const { session } = await enqueueSession(fleet, instance.id, "admin");
    await waitFor("the session to end", async () => (await showSession(fleet, session.id)).status === "authorized", 15_000);
    await waitFor("every delivery to be final", async () =>
      (await d.ctx.db.delivery.count({ where: { event: { sessionId: session.id }, status: "pending" } })) === 0,
    );
    const hooks = receiver.requests.filter((r) => mine(r.path)).map((r) => verified(r, added.webhookSecret!));
    return { sessionId: session.id, hooks };
  };
  return { idInstance, url, mine, run };
}

const isOutcome = (body: string) => !body.includes('"type":"qr.updated"');

describe("webhook retries through the notify queue", () => {
  it("an outcome answered 500, 500, then 200: three tries with one webhook-id and one body, the delivery ends sent with attempts = 3", async () => {
    const s = await scanned();
    let outcomeTries = 0;
    receiver.route((req) => (s.mine(req.path) && isOutcome(req.body) && ++outcomeTries <= 2 ? { status: 500, body: "busy" } : undefined));
    const { sessionId, hooks } = await s.run();
    receiver.route(null);

    const tries = hooks.filter((h) => h.type !== "qr.updated");
    expect(tries.map((h) => h.type)).toEqual(["session.authorized", "session.authorized", "session.authorized"]);
    expect(new Set(tries.map((h) => h.id)).size).toBe(1);
    expect(new Set(tries.map((h) => h.req.body)).size).toBe(1);
    // The waits follow the outcome schedule (0, 5 s, 5 min) scaled by 0.001: the third try waited ~300 ms.
    expect(tries[2]!.req.at.getTime() - tries[1]!.req.at.getTime()).toBeGreaterThanOrEqual(250);

    const row = await d.ctx.db.delivery.findUniqueOrThrow({ where: { id: tries[0]!.id.replace(/^msg_/, "") }, include: { event: true } });
    expect(row).toMatchObject({ status: "sent", tries: 3, responseStatus: 200, responseBody: "ok", lastError: null, handedOffAt: null });
    expect(row.event).toMatchObject({ type: "session.authorized", sessionId });
    const job = await d.ctx.queues.notify.getJob(notifyJobId(row.id));
    expect(await job!.getState()).toBe("completed");
    expect(job!.returnvalue).toBe("sent");

    // The QR webhooks, answered 200, went once each.
    const qr = hooks.filter((h) => h.type === "qr.updated");
    expect(qr.length).toBeGreaterThanOrEqual(1);
    expect(new Set(qr.map((h) => h.id)).size).toBe(qr.length);
  });

  it("an outcome answered 400 fails at once, is not retried, and the deliveries listing says why", async () => {
    const s = await scanned();
    receiver.route((req) => (s.mine(req.path) && isOutcome(req.body) ? { status: 400, body: "unknown event type" } : undefined));
    const { sessionId, hooks } = await s.run();
    receiver.route(null);

    const tries = hooks.filter((h) => h.type !== "qr.updated");
    expect(tries.map((h) => h.type)).toEqual(["session.authorized"]);
    const deliveryId = tries[0]!.id.replace(/^msg_/, "");
    // The first try is the daemon's own; only a retry would have gone through the queue.
    expect(await d.ctx.queues.notify.getJob(notifyJobId(deliveryId))).toBeUndefined();

    const failed = await listDeliveries(d.ctx, { session: sessionId, status: "failed" });
    expect(failed).toHaveLength(1);
    expect(failed[0]).toMatchObject({
      id: deliveryId,
      eventType: "session.authorized",
      sessionId,
      channelKind: "webhook",
      address: s.url,
      status: "failed",
      tries: 1,
      responseStatus: 400,
      lastError: "webhook answered 400",
    });
    const sent = await listDeliveries(d.ctx, { session: sessionId, status: "sent" });
    expect(sent.length).toBeGreaterThanOrEqual(1);
    expect(sent.every((d) => d.eventType === "qr.updated")).toBe(true);
    expect(receiver.requests.filter((r) => s.mine(r.path) && isOutcome(r.body))).toHaveLength(1);
  });
});
