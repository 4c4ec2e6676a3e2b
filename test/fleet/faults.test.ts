import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { enqueueSession, showSession } from "../../src/fleet/sessions/sessions.js";
import { startSimulator, type Script, type Simulator } from "../../src/simulator/index.js";
import { newPrefix, simulatedInstance, testFleet, waitFor } from "../support/fleet.js";
import { spawnDaemon, spawnTs, type Spawned } from "../support/spawn.js";

const prefix = newPrefix();
const env = { QRFLEET_REDIS_PREFIX: prefix };
let sim: Simulator;
let fleet: ReturnType<typeof testFleet>;
const children: Spawned[] = [];

beforeAll(async () => {
  sim = await startSimulator({ defaults: { rotationMs: 300 } });
  fleet = testFleet(env);
});
afterEach(async () => {
  for (const c of children.splice(0)) {
    if (c.child.exitCode === null && c.child.signalCode === null) c.child.kill("SIGKILL");
    await c.exited;
  }
});
afterAll(async () => {
  await fleet?.close();
  await sim?.close();
});

const instanceWith = (script: Partial<Script>, extra: Record<string, unknown> = {}) =>
  simulatedInstance(fleet, sim, script, extra);

function daemon(): Spawned {
  const d = spawnDaemon(env);
  children.push(d);
  return d;
}

const runningWithQr = (sessionId: string) =>
  waitFor("the session to run and show a QR", async () => {
    const s = await showSession(fleet, sessionId);
    return s.status === "running" && s.qrCount > 0 ? s : null;
  });

const ended = (sessionId: string, timeoutMs = 30_000) =>
  waitFor("the session to end", async () => {
    const s = await showSession(fleet, sessionId);
    return s.status !== "queued" && s.status !== "running" ? s : null;
  }, timeoutMs);

describe("crash safety", () => {
  it("kill -9 mid-session: another daemon picks the session up and it ends with one outcome", async () => {
    // The first socket is never scanned (long window); the one opened after the crash is.
    const inst = await instanceWith({ fate: "scan", scanOnConnection: 2, scanAfterMs: 400, scanWindowMs: 60_000 });
    const a = daemon();
    await a.waitForLine(/qrfleet daemon started/);
    const { session } = await enqueueSession(fleet, inst.id, "admin");
    await runningWithQr(session.id);
    a.child.kill("SIGKILL");
    expect((await a.exited).signal).toBe("SIGKILL");

    const b = daemon();
    const done = await ended(session.id, 40_000);
    expect(done.status).toBe("authorized");
    expect(done.attempts).toHaveLength(1);
    expect(done.attempts![0]).toMatchObject({ number: 1, outcome: "authorized", resumes: 1 });
    expect(sim.connections(inst.idInstance)).toBe(2);
    expect(await fleet.db.qrSession.count({ where: { instanceId: inst.id } })).toBe(1);
    b.child.kill("SIGTERM");
    expect((await b.exited).code).toBe(0);
  }, 60_000);

  it("SIGTERM hands running sessions back within the grace period, exits 0, and the next daemon resumes them", async () => {
    const inst = await instanceWith({ fate: "scan", scanOnConnection: 2, scanAfterMs: 400, scanWindowMs: 60_000 });
    const a = daemon();
    await a.waitForLine(/qrfleet daemon started/);
    const { session } = await enqueueSession(fleet, inst.id, "admin");
    await runningWithQr(session.id);
    const stopAt = Date.now();
    a.child.kill("SIGTERM");
    expect((await a.exited).code).toBe(0);
    expect(Date.now() - stopAt).toBeLessThan(10_000);
    expect((await showSession(fleet, session.id)).status).toBe("queued");

    daemon();
    const done = await ended(session.id);
    expect(done.status).toBe("authorized");
    expect(done.attempts![0]).toMatchObject({ number: 1, resumes: 1 });
  }, 60_000);

  it("a storm of enqueues from several processes yields one session", async () => {
    const inst = await instanceWith({ fate: "never", scanWindowMs: 60_000 });
    const procs = Array.from({ length: 4 }, () => spawnTs("test/support/enqueue-storm.ts", [inst.idInstance, "25"], env));
    children.push(...procs);
    const outputs = await Promise.all(
      procs.map(async (p) => {
        expect((await p.exited).code).toBe(0);
        return JSON.parse(p.lines.find((l) => l.startsWith("["))!) as Array<{ id: string; created: boolean }>;
      }),
    );
    const all = outputs.flat();
    expect(all).toHaveLength(100);
    expect(new Set(all.map((r) => r.id)).size).toBe(1);
    expect(all.filter((r) => r.created)).toHaveLength(1);
    expect(await fleet.db.qrSession.count({ where: { instanceId: inst.id } })).toBe(1);
  }, 60_000);
});
