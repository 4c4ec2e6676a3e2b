import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { backoffDelayMs } from "../../src/fleet/sessions/backoff.js";
import { enqueueSession, showSession } from "../../src/fleet/sessions/sessions.js";
import { startSimulator, type Script, type Simulator } from "../../src/simulator/index.js";
import type { Daemon } from "../../workers/daemon.js";
import { newPrefix, simulatedInstance, startTestDaemon, waitFor } from "../support/fleet.js";

let sim: Simulator;
let daemon: Daemon;

beforeAll(async () => {
  sim = await startSimulator({ defaults: { rotationMs: 100, scanWindowMs: 300 } });
  daemon = await startTestDaemon({ QRFLEET_REDIS_PREFIX: newPrefix() });
});
afterAll(async () => {
  await daemon?.close();
  await sim?.close();
});

const instanceWith = (script: Partial<Script>, extra: Record<string, unknown> = {}) =>
  simulatedInstance(daemon.ctx, sim, script, extra);

async function ended(sessionId: string) {
  return waitFor("the session to end", async () => {
    const s = await showSession(daemon.ctx, sessionId);
    return s.status !== "queued" && s.status !== "running" ? s : null;
  }, 30_000);
}

describe("retries after timeouts", () => {
  it("backs off exponentially with jitter between recorded attempts, up to the cap", async () => {
    const base = 400;
    const max = 1000;
    const inst = await instanceWith({ fate: "never" }, { maxAttempts: 4, backoffBaseMs: base, backoffMaxMs: max });
    const { session } = await enqueueSession(daemon.ctx, inst.id, "admin");
    const done = await ended(session.id);
    expect(done.status).toBe("timed_out");
    const attempts = done.attempts!;
    expect(attempts.map((a) => a.number)).toEqual([1, 2, 3, 4]);
    for (let n = 2; n <= 4; n++) {
      const gap = attempts[n - 1]!.startedAt.getTime() - attempts[n - 2]!.endedAt!.getTime();
      const cap = Math.min(max, base * 2 ** (n - 2));
      expect(gap, `gap before attempt ${n}`).toBeGreaterThanOrEqual(cap / 2 - 50);
      expect(gap, `gap before attempt ${n}`).toBeLessThan(cap + 1500);
    }
  });

  it("links on a later attempt when the phone scans then", async () => {
    const inst = await instanceWith({ fate: "scan", scanAfterMs: 150, scanOnConnection: 2 }, { backoffBaseMs: 100 });
    const { session } = await enqueueSession(daemon.ctx, inst.id, "admin");
    const done = await ended(session.id);
    expect(done.status).toBe("authorized");
    expect(done.attempts!.map((a) => a.outcome)).toEqual(["timed_out", "authorized"]);
    const after = await daemon.ctx.db.instance.findUniqueOrThrow({ where: { id: inst.id } });
    expect(after.lastState).toBe("authorized"); // confirmed with getStateInstance after the scan
  });

  it("computes delays within [cap/2, cap] and never above the maximum", () => {
    for (let n = 2; n < 30; n++) {
      for (const r of [0, 0.5, 0.999]) {
        const d = backoffDelayMs(n, 60_000, 1_800_000, () => r);
        const cap = Math.min(1_800_000, 60_000 * 2 ** (n - 2));
        expect(d).toBeGreaterThanOrEqual(cap / 2);
        expect(d).toBeLessThanOrEqual(cap);
      }
    }
  });
});
