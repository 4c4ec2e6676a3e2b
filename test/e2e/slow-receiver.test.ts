import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { addOperator, assign } from "../../src/fleet/operators/operators.js";
import { enqueueSession, showSession } from "../../src/fleet/sessions/sessions.js";
import { startSimulator, type Simulator } from "../../src/simulator/index.js";
import type { Daemon } from "../../workers/daemon.js";
import { simulatedInstance, startTestDaemon, waitFor } from "../support/fleet.js";
import { startReceiver, type Receiver } from "../support/receiver.js";
import { verified } from "./support.js";

/**
 * A receiver slower than the QR rotation: QR codes pile up behind it. Each is still stored, the
 * newest of the session is what goes out next, and the ones it superseded are expired unsent.
 */

let sim: Simulator;
let receiver: Receiver;
let d: Daemon;

beforeAll(async () => {
  sim = await startSimulator({ defaults: { fate: "never", rotationMs: 100, scanWindowMs: 2500 } });
  receiver = await startReceiver();
  d = await startTestDaemon({ QRFLEET_SESSION_ATTEMPTS: "1" });
});
afterAll(async () => {
  await d?.close();
  await Promise.all([sim?.close(), receiver?.close()]);
});

describe("a receiver slower than the rotation", () => {
  it("gets the newest QR each time it is free, in order; superseded ones are expired, none fail or wait", async () => {
    const instance = await simulatedInstance(d.ctx, sim, {});
    const url = `${receiver.url}?slow=${instance.idInstance}`;
    const added = await addOperator(d.ctx, { name: `slow-${instance.idInstance}`, webhook: url });
    await assign(d.ctx, instance.id, added.operator.id);
    const mine = (path: string) => path.endsWith(`?slow=${instance.idInstance}`);
    receiver.route((req) => (mine(req.path) ? { status: 200, body: "ok", delayMs: 450 } : undefined));

    const { session } = await enqueueSession(d.ctx, instance.id, "admin");
    await waitFor("the session to time out", async () => (await showSession(d.ctx, session.id)).status === "timed_out", 20_000);
    const where = { event: { sessionId: session.id } };
    await waitFor("every delivery to be final", async () => (await d.ctx.db.delivery.count({ where: { ...where, status: "pending" } })) === 0);
    receiver.route(null);

    const stored = await d.ctx.db.qrCode.count({ where: { sessionId: session.id } });
    expect(stored).toBeGreaterThanOrEqual(10); // every rotation is kept, however slow the receiver
    const rows = await d.ctx.db.delivery.findMany({ where, include: { event: true } });
    const qr = rows.filter((r) => r.event.type === "qr.updated");
    expect(qr).toHaveLength(stored);
    expect(rows.filter((r) => r.status === "failed")).toEqual([]);
    const expired = qr.filter((r) => r.status === "expired");
    expect(expired.length).toBeGreaterThan(stored / 2);
    for (const r of expired) expect(r.lastError).toMatch(/^expired: (a newer QR superseded it|its session attempt has ended)/);

    const hooks = receiver.requests.filter((r) => mine(r.path)).map((r) => verified(r, added.webhookSecret!));
    const sequences = hooks.filter((h) => h.type === "qr.updated").map((h) => h.data.sequence as number);
    expect(sequences.length).toBeGreaterThanOrEqual(2);
    expect(sequences).toEqual([...sequences].sort((x, y) => x - y)); // in order, never an older one after a newer
    expect(new Set(sequences).size).toBe(sequences.length);
    expect(hooks.at(-1)!.type).toBe("session.timed_out"); // the outcome after its QR updates
  }, 40_000);
});
