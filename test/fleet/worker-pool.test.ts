import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SecretBox } from "../../src/secrets.js";
import { startSimulator, type Simulator, type Script } from "../../src/simulator/index.js";
import { addInstance } from "../../src/fleet/instances/instances.js";
import { cancelSession, enqueueSession, showSession } from "../../src/fleet/sessions/sessions.js";
import type { Daemon } from "../../workers/daemon.js";
import { newIdInstance, newPrefix, newToken, startTestDaemon, testFleet, waitFor } from "../support/fleet.js";

const PER_FATE = 50;
const fates: Array<{ name: string; script: Partial<Script>; expect: string }> = [
  { name: "scanned", script: { fate: "scan", scanAfterMs: 350 }, expect: "authorized" },
  { name: "never scanned", script: { fate: "never" }, expect: "timed_out" },
  { name: "already linked", script: { fate: "authorized" }, expect: "already_logged" },
  { name: "token refused", script: { fate: "wrong_token" }, expect: "failed" },
];

let sim: Simulator;
let daemon: Daemon;
const instances: Array<{ id: string; fate: string; expect: string; token: string }> = [];

beforeAll(async () => {
  sim = await startSimulator({ defaults: { rotationMs: 250, scanWindowMs: 900 } });
  daemon = await startTestDaemon({ QRFLEET_REDIS_PREFIX: newPrefix(), QRFLEET_CONCURRENCY: "300", QRFLEET_HTTP_TIMEOUT_MS: "10000" });
  for (const f of fates) {
    for (let i = 0; i < PER_FATE; i++) {
      const idInstance = newIdInstance();
      const token = newToken();
      sim.define({ idInstance, token, ...f.script });
      const inst = await addInstance(daemon.ctx, { apiUrl: sim.url, idInstance, token, label: `${f.name} ${i}` });
      instances.push({ id: inst.id, fate: f.name, expect: f.expect, token });
    }
  }
}, 60_000);

/** The attempts' outcomes in order, so a wrong status says how the session got there. */
function attemptTrail(attempts: Array<{ number: number; outcome: string | null; errorCode: string | null; qrCount: number }>): string {
  return [...attempts].sort((a, b) => a.number - b.number).map((a) => `${a.outcome ?? "none"}${a.errorCode ? `/${a.errorCode}` : ""} (${a.qrCount} QR)`).join(", ");
}

afterAll(async () => {
  await daemon?.close();
  await sim?.close();
});

describe("the worker pool", () => {
  it("runs a few hundred sessions at once, each to the outcome its instance deserves", async () => {
    const started = await Promise.all(instances.map((i) => enqueueSession(daemon.ctx, i.id, "admin")));
    expect(started.every((s) => s.created)).toBe(true);
    const ids = started.map((s) => s.session.id);
    await waitFor("every session to end", async () => {
      const open = await daemon.ctx.db.qrSession.count({ where: { id: { in: ids }, status: { in: ["queued", "running"] } } });
      return open === 0;
    }, 60_000, 250);

    const sessions = await daemon.ctx.db.qrSession.findMany({ where: { id: { in: ids } }, include: { attempts: true } });
    const byInstance = new Map(sessions.map((s) => [s.instanceId, s]));
    const wrong = instances
      .map((inst) => ({ inst, s: byInstance.get(inst.id)! }))
      .filter(({ inst, s }) => s.status !== inst.expect)
      .map(({ inst, s }) => `${inst.fate}: ${s.status} ${s.errorCode ?? ""} ${s.error ?? ""} after ${attemptTrail(s.attempts)}`);
    expect(wrong).toEqual([]);
    // one session per instance, never two
    expect(await daemon.ctx.db.qrSession.count({ where: { instanceId: { in: instances.map((i) => i.id) } } })).toBe(instances.length);

    const timedOut = sessions.filter((s) => s.status === "timed_out");
    for (const s of timedOut) {
      expect(s.attempt).toBe(3);
      expect(s.attempts.map((a) => a.outcome).sort()).toEqual(["timed_out", "timed_out", "timed_out"]);
    }
    const refused = sessions.filter((s) => s.status === "failed");
    const tokenOf = new Map(instances.map((i) => [i.id, i.token]));
    for (const s of refused) {
      expect(s.errorCode).toBe("invalid_token");
      expect(s.error).toContain("/scanqrcode/***"); // the stored error names the URL, masked
      expect(JSON.stringify(s)).not.toContain(tokenOf.get(s.instanceId));
      expect(s.attempts).toHaveLength(1); // a refused token is not retried
    }
    const refusedInstances = await daemon.ctx.db.instance.findMany({ where: { id: { in: refused.map((s) => s.instanceId) } } });
    expect(refusedInstances.every((i) => i.attention === "invalid_token")).toBe(true);

    const authorized = sessions.filter((s) => s.status === "authorized");
    for (const s of authorized) expect(s.phone).toBe("79001234567");
  }, 90_000);

  it("stores every distinct QR image of a session once, in sequence", async () => {
    const inst = instances.find((i) => i.fate === "never scanned")!;
    const session = await daemon.ctx.db.qrSession.findFirstOrThrow({ where: { instanceId: inst.id } });
    const codes = await daemon.ctx.db.qrCode.findMany({ where: { sessionId: session.id }, orderBy: { sequence: "asc" } });
    expect(codes.length).toBeGreaterThanOrEqual(6); // ~3 rotations per window, 3 attempts
    expect(codes.map((c) => c.sequence)).toEqual(codes.map((_, i) => i + 1));
    expect(new Set(codes.map((c) => c.sha256)).size).toBe(codes.length);
    expect(session.qrCount).toBe(codes.length);
    for (const c of codes) expect(Buffer.from(c.png).subarray(1, 4).toString()).toBe("PNG");
    const view = await showSession(daemon.ctx, session.id);
    expect(view.attempts?.map((a) => a.qrCount).reduce((a, b) => a + b, 0)).toBe(codes.length);
  });

  it("masks the instance's own token wherever a provider error quotes it back", async () => {
    const idInstance = newIdInstance();
    const token = newToken();
    sim.define({ idInstance, token, fate: "provider_error", errorMessage: `bad request for ${token}; token=${token}` });
    const inst = await addInstance(daemon.ctx, { apiUrl: sim.url, idInstance, token, maxAttempts: 1 });
    const { session } = await enqueueSession(daemon.ctx, inst.id, "admin");
    const done = await waitFor("the session to end", async () => {
      const s = await showSession(daemon.ctx, session.id);
      return s.status === "queued" || s.status === "running" ? null : s;
    });
    expect(done).toMatchObject({ status: "failed", errorCode: "provider_error" });
    expect(done.error).toContain("bad request for ***; token=***");
    const rows = await daemon.ctx.db.qrSession.findUniqueOrThrow({ where: { id: session.id }, include: { attempts: true, events: true } });
    expect(JSON.stringify(rows)).not.toContain(token);
    expect(JSON.stringify(done)).not.toContain(token);
  });

  it("keeps a wrong-number flag when a later session finds the instance already linked (the wrong phone still is)", async () => {
    const idInstance = newIdInstance();
    const token = newToken();
    sim.define({ idInstance, token, fate: "authorized" });
    const inst = await addInstance(daemon.ctx, { apiUrl: sim.url, idInstance, token, phone: "79990000001" });
    await daemon.ctx.db.instance.update({ where: { id: inst.id }, data: { attention: "wrong_number" } });
    const { session } = await enqueueSession(daemon.ctx, inst.id, "live");
    const done = await waitFor("the session to end", async () => {
      const s = await showSession(daemon.ctx, session.id);
      return s.status === "queued" || s.status === "running" ? null : s;
    });
    expect(done.status).toBe("already_logged");
    expect((await daemon.ctx.db.instance.findUniqueOrThrow({ where: { id: inst.id } })).attention).toBe("wrong_number");
  });

  it("takes a session cancelled from another process off the running gauge", async () => {
    const running = async () => Number(/^qrfleet_sessions_running (\d+)/m.exec(await (await fetch(`${daemon.url}/metrics`)).text())?.[1]);
    const idInstance = newIdInstance();
    const token = newToken();
    sim.define({ idInstance, token, fate: "never", scanWindowMs: 60_000 });
    const inst = await addInstance(daemon.ctx, { apiUrl: sim.url, idInstance, token });
    const { session } = await enqueueSession(daemon.ctx, inst.id, "admin");
    await waitFor("the session to run", async () => (await showSession(daemon.ctx, session.id)).status === "running");
    expect(await running()).toBe(1);
    const cli = testFleet({ QRFLEET_REDIS_PREFIX: daemon.ctx.config.QRFLEET_REDIS_PREFIX });
    try {
      await cancelSession(cli, session.id, "cancelled from the CLI");
    } finally {
      await cli.close();
    }
    await waitFor("the gauge to drop", async () => (await running()) === 0);
  });

  it("ends a session failed, with a clear reason, when the stored token cannot be decrypted", async () => {
    const otherKey = new SecretBox(randomBytes(32).toString("base64"));
    const inst = await daemon.ctx.db.instance.create({
      data: { apiUrl: sim.url, idInstance: newIdInstance(), tokenCiphertext: otherKey.seal(newToken()) },
    });
    const { session } = await enqueueSession(daemon.ctx, inst.id, "admin");
    const done = await waitFor("the session to end", async () => {
      const s = await showSession(daemon.ctx, session.id);
      return s.status === "queued" || s.status === "running" ? null : s;
    });
    expect(done).toMatchObject({ status: "failed", errorCode: "invalid_token" });
    expect(done.error).toMatch(/cannot be decrypted/);
    expect(done.attempts).toHaveLength(1);
    expect((await daemon.ctx.db.instance.findUniqueOrThrow({ where: { id: inst.id } })).attention).toBe("invalid_token");
  });
});
