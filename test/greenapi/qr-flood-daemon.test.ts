import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { addOperator, assign } from "../../src/fleet/operators/operators.js";
import { enqueueSession, showSession } from "../../src/fleet/sessions/sessions.js";
import { startSimulator, type Simulator } from "../../src/simulator/index.js";
import type { Daemon } from "../../workers/daemon.js";
import { verified } from "../e2e/support.js";
import { simulatedInstance, startTestDaemon, waitFor } from "../support/fleet.js";
import { startReceiver, type Receiver } from "../support/receiver.js";

/**
 * A hostile provider sends 2,000 distinct QR codes at once on every socket, through the real
 * daemon: PostgreSQL, the queue, a signed webhook receiver. Operators get QR codes at the bounded
 * pace, the session ends with a recorded outcome (never failed/silent), and nothing is left pending.
 */

const INTERVAL_MS = 100;
const FLOOD = { fate: "flood", floodFrames: 2000, floodBurst: 2000 } as const;

let sim: Simulator;
let receiver: Receiver;

beforeAll(async () => {
  sim = await startSimulator({ defaults: { rotationMs: 300, scanWindowMs: 1500 } });
  receiver = await startReceiver();
});
afterAll(async () => {
  await Promise.all([sim?.close(), receiver?.close()]);
});

async function floodedSession(d: Daemon) {
  const instance = await simulatedInstance(d.ctx, sim, FLOOD);
  const url = `${receiver.url}?flood=${instance.idInstance}`;
  const added = await addOperator(d.ctx, { name: `flood-${instance.idInstance}`, webhook: url });
  await assign(d.ctx, instance.id, added.operator.id);
  const { session } = await enqueueSession(d.ctx, instance.id, "admin");
  const ended = await waitFor("the session to end", async () => {
    const s = await showSession(d.ctx, session.id);
    return s.endedAt ? s : null;
  }, 30_000);
  const where = { event: { sessionId: session.id } };
  await waitFor("every delivery to be final", async () => (await d.ctx.db.delivery.count({ where: { ...where, status: "pending" } })) === 0);
  const hooks = () => receiver.requests.filter((r) => r.path.endsWith(`?flood=${instance.idInstance}`)).map((r) => verified(r, added.webhookSecret!));
  await waitFor("the outcome webhook", async () => hooks().some((h) => h.type.startsWith("session.")));
  const stored = await d.ctx.db.qrCode.count({ where: { sessionId: session.id } });
  return { session: ended, hooks: hooks(), stored, instance };
}

async function metric(d: Daemon, name: string): Promise<number> {
  const text = await (await fetch(`${d.url}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(`${name} `));
  return line ? Number(line.split(" ")[1]) : 0;
}

describe("a provider that floods QR codes, with the default flood rule", () => {
  let d: Daemon;
  beforeAll(async () => {
    d = await startTestDaemon({ QRFLEET_SESSION_ATTEMPTS: "2", QRFLEET_QR_MIN_INTERVAL_MS: String(INTERVAL_MS) });
  });
  afterAll(() => d?.close());

  it("ends each attempt failed/qr_flood after one QR, retries with backoff, and ends the session failed", async () => {
    const { session, hooks, stored } = await floodedSession(d);
    expect(session.status).toBe("failed");
    expect(session.errorCode).toBe("qr_flood");
    expect(session.error).toMatch(/faster than it can rotate them/);
    expect((session.attempts ?? []).map((a) => a.errorCode)).toEqual(["qr_flood", "qr_flood"]);
    const qrHooks = hooks.filter((h) => h.type === "qr.updated");
    // 4,000 QR frames over two attempts, one QR stored per attempt; an announcement that would reach the
    // receiver after its attempt ended is expired instead (a QR of an ended attempt cannot be scanned).
    expect(stored).toBe(2);
    expect(qrHooks.length).toBeGreaterThanOrEqual(1);
    expect(qrHooks.length).toBeLessThanOrEqual(stored);
    const failures = hooks.filter((h) => h.type === "session.failed");
    expect(failures.map((h) => [h.data.attempt, h.data.final, h.data.errorCode])).toEqual([[1, false, "qr_flood"], [2, true, "qr_flood"]]);
  }, 40_000);
});

describe("a provider that floods QR codes, served at the bounded pace", () => {
  let d: Daemon;
  beforeAll(async () => {
    d = await startTestDaemon({
      QRFLEET_SESSION_ATTEMPTS: "1", QRFLEET_QR_MIN_INTERVAL_MS: String(INTERVAL_MS), QRFLEET_QR_FLOOD_FRAMES: "1000000",
    });
  });
  afterAll(() => d?.close());

  it("coalesces the flood to the newest QR, counts what it dropped, and times out as the provider says", async () => {
    const dropped = await metric(d, "qrfleet_qr_dropped_total");
    const { session, hooks, stored } = await floodedSession(d);
    // The socket kept sending (and its frames waited in memory for their turn): never failed/silent.
    expect(session.status).toBe("timed_out");
    const qrHooks = hooks.filter((h) => h.type === "qr.updated");
    // The scan window is 1.5 s: at one QR per 100 ms, at most 16 (plus one at its very end).
    expect(qrHooks.length).toBeGreaterThanOrEqual(2);
    expect(qrHooks.length).toBeLessThanOrEqual(1 + Math.ceil(1500 / INTERVAL_MS) + 1);
    expect(stored).toBe(qrHooks.length);
    const times = qrHooks.map((h) => Date.parse(String(h.data.receivedAt)));
    for (let i = 1; i < times.length; i += 1) expect(times[i]! - times[i - 1]!).toBeGreaterThanOrEqual(INTERVAL_MS - 1);
    expect(hooks.at(-1)!.type).toBe("session.timed_out");
    expect((await metric(d, "qrfleet_qr_dropped_total")) - dropped).toBeGreaterThanOrEqual(2000 - qrHooks.length - 10);
  }, 40_000);
});
