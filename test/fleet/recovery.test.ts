import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { addInstance } from "../../src/fleet/instances/instances.js";
import { addOperator } from "../../src/fleet/operators/operators.js";
import { enqueueSession } from "../../src/fleet/sessions/sessions.js";
import { addSessionJobs } from "../../src/queues.js";
import { startSimulator, type Script, type Simulator } from "../../src/simulator/index.js";
import type { Daemon } from "../../workers/daemon.js";
import { verified } from "../e2e/support.js";
import { deleteRedisKeys, newIdInstance, newPrefix, newToken, startTestDaemon, waitFor } from "../support/fleet.js";
import { startReceiver, type Receiver } from "../support/receiver.js";

let sim: Simulator;
let receiver: Receiver;
const daemons: Daemon[] = [];

beforeAll(async () => {
  sim = await startSimulator({ defaults: { rotationMs: 100, scanWindowMs: 400 } });
  receiver = await startReceiver();
});
afterAll(async () => {
  for (const d of daemons) await d.close();
  await Promise.all([sim?.close(), receiver?.close()]);
});

async function addMany(d: Daemon, n: number, script: Partial<Script>, extra: Record<string, unknown> = {}) {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const idInstance = newIdInstance();
    const token = newToken();
    sim.define({ idInstance, token, ...script });
    ids.push((await addInstance(d.ctx, { apiUrl: sim.url, idInstance, token, ...extra })).id);
  }
  return ids;
}

const allEnded = (d: Daemon, sessionIds: string[], timeoutMs = 30_000) =>
  waitFor("all sessions to end", async () => {
    const open = await d.ctx.db.qrSession.count({ where: { id: { in: sessionIds }, status: { in: ["queued", "running"] } } });
    return open === 0;
  }, timeoutMs, 200);


describe("recovery and scale-out", () => {
  it("after Redis loses everything, the reconciler restores every due session from PostgreSQL", async () => {
    const prefix = newPrefix();
    const d = await startTestDaemon({ QRFLEET_REDIS_PREFIX: prefix, QRFLEET_RECONCILE_INTERVAL_MS: "1000", QRFLEET_SWEEP_INTERVAL_MS: "3600000" });
    daemons.push(d);
    // Attempt 1 times out; attempt 2 waits ~1.5-3 s in a delayed job, which the loss wipes out.
    const ids = await addMany(d, 20, { fate: "scan", scanOnConnection: 2, scanAfterMs: 100 }, { backoffBaseMs: 3000, backoffMaxMs: 3000 });
    const sessions = await Promise.all(ids.map((id) => enqueueSession(d.ctx, id, "admin")));
    const sessionIds = sessions.map((s) => s.session.id);
    await waitFor("every session to wait for its second attempt", async () =>
      (await d.ctx.db.qrSession.count({ where: { id: { in: sessionIds }, status: "queued", attempt: 2 } })) === ids.length,
    );
    expect(await deleteRedisKeys(d.ctx.queues.connection, prefix)).toBeGreaterThan(0);
    await allEnded(d, sessionIds);
    const done = await d.ctx.db.qrSession.findMany({ where: { id: { in: sessionIds } } });
    expect(done.map((s) => s.status)).toEqual(done.map(() => "authorized"));
    await d.close(); // its reconciler works on the whole database: keep it out of the next test
  }, 60_000);

  it("a job Redis lost and got back while its attempt runs here does not take the running attempt over", async () => {
    const prefix = newPrefix();
    const d = await startTestDaemon({
      QRFLEET_REDIS_PREFIX: prefix, QRFLEET_LOCK_DURATION_MS: "1500", QRFLEET_STALLED_INTERVAL_MS: "500",
      QRFLEET_RECONCILE_INTERVAL_MS: "1000", QRFLEET_SESSION_ATTEMPTS: "1", QRFLEET_SCAN_WINDOW_MS: "4000",
    });
    daemons.push(d);
    const ids = await addMany(d, 6, { fate: "never", rotationMs: 200, scanWindowMs: 4000 });
    const sessionIds = (await Promise.all(ids.map((id) => enqueueSession(d.ctx, id, "admin")))).map((s) => s.session.id);
    await waitFor("every session to show a QR code", async () =>
      (await d.ctx.db.qrCode.groupBy({ by: ["sessionId"], where: { sessionId: { in: sessionIds } } })).length === ids.length,
    );
    // Redis loses the running jobs, and each comes back (as another daemon's reconciler puts it back).
    await deleteRedisKeys(d.ctx.queues.connection, prefix);
    await addSessionJobs(d.ctx.queues, sessionIds.map((sessionId) => ({ sessionId, attempt: 1 })));
    await allEnded(d, sessionIds);
    const attempts = await d.ctx.db.qrAttempt.findMany({ where: { sessionId: { in: sessionIds } } });
    // One socket per attempt, or one resume where the loss was noticed first: never a run taken over and over.
    expect(attempts.filter((a) => a.outcome !== "timed_out" || a.resumes > 1).map((a) => [a.outcome, a.resumes])).toEqual([]);
    await d.close();
  }, 60_000);

  it("two daemons on the same Redis and PostgreSQL share the work with no duplicate session or webhook", async () => {
    const prefix = newPrefix();
    const a = await startTestDaemon({ QRFLEET_REDIS_PREFIX: prefix, QRFLEET_CONCURRENCY: "20" });
    const b = await startTestDaemon({ QRFLEET_REDIS_PREFIX: prefix, QRFLEET_CONCURRENCY: "20" });
    daemons.push(a, b);
    // No assignment: a fleet-wide operator, so every instance's QR codes and outcomes go to it.
    const { webhookSecret } = await addOperator(a.ctx, { name: `fleet-${prefix}`, webhook: receiver.url });
    const ids = await addMany(a, 80, { fate: "scan", scanAfterMs: 250 });
    const sessions = await Promise.all(ids.map((id, i) => enqueueSession(i % 2 ? a.ctx : b.ctx, id, "admin")));
    const sessionIds = sessions.map((s) => s.session.id);
    await allEnded(a, sessionIds);
    const attempts = await a.ctx.db.qrAttempt.findMany({ where: { sessionId: { in: sessionIds } } });
    expect(attempts).toHaveLength(ids.length);
    expect(new Set(attempts.map((x) => x.worker)).size).toBe(2);
    expect(attempts.filter((x) => x.outcome !== "authorized" || x.resumes !== 0).map((x) => [x.outcome, x.resumes, x.qrCount])).toEqual([]);

    const mine = { event: { sessionId: { in: sessionIds } } };
    await waitFor("every delivery to be final", async () => (await a.ctx.db.delivery.count({ where: { ...mine, status: "pending" } })) === 0);
    const rows = await a.ctx.db.delivery.findMany({ where: mine, include: { event: true } });
    const sent = rows.filter((r) => r.status === "sent");
    // A QR update can expire unsent (the phone scanned before it went out); nothing fails.
    expect(rows.filter((r) => r.status !== "sent" && r.status !== "expired")).toEqual([]);
    expect(sent.filter((r) => r.event.type === "session.authorized")).toHaveLength(ids.length);
    expect(sent.filter((r) => r.event.type === "qr.updated").length).toBeGreaterThanOrEqual(ids.length);
    const hooks = receiver.requests.map((r) => verified(r, webhookSecret!)).filter((h) => sessionIds.includes(String(h.data.sessionId)));
    expect(new Set(hooks.map((h) => h.id)).size).toBe(hooks.length); // no delivery went out twice
    expect(hooks.map((h) => h.id).sort()).toEqual(sent.map((r) => `msg_${r.id}`).sort()); // each sent one arrived
  }, 60_000);
});
