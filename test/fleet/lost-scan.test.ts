import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { enqueueSession, showSession } from "../../src/fleet/sessions/sessions.js";
import { startSimulator, type Simulator } from "../../src/simulator/index.js";
import type { Daemon } from "../../workers/daemon.js";
import { newPrefix, simulatedInstance, startTestDaemon, waitFor } from "../support/fleet.js";

/**
 * A phone scans one of the session's QR codes, and the socket dies before its `accountData`
 * arrives (a crash, a lost lock, a dropped connection). The next run only hears `alreadyLogged`.
 */
const SCANNER = "79005550001";
/** idInstance → the phone that links it when its first socket closes. */
const scanOnFirstClose = new Map<string, string>();
const restCalls: Array<{ idInstance: string; method: string }> = [];
const settingsCalls = (idInstance: string) => restCalls.filter((c) => c.idInstance === idInstance && c.method === "getWaSettings").length;

let sim: Simulator;
let daemon: Daemon;

beforeAll(async () => {
  sim = await startSimulator({
    defaults: { rotationMs: 100, scanWindowMs: 30_000 },
    hooks: {
      socketClosed: ({ idInstance, connection }) => {
        const phone = scanOnFirstClose.get(idInstance);
        if (connection === 1 && phone) sim.script(idInstance, { fate: "authorized", phone });
      },
      restCall: ({ idInstance, method }) => restCalls.push({ idInstance, method }),
    },
  });
  daemon = await startTestDaemon({ QRFLEET_REDIS_PREFIX: newPrefix() });
});
afterAll(async () => {
  await daemon?.close();
  await sim?.close();
});

async function sessionWhoseScanWasLost(extra: Record<string, unknown> = {}) {
  const inst = await simulatedInstance(daemon.ctx, sim, { fate: "drop", dropAfterMs: 500 }, extra);
  scanOnFirstClose.set(inst.idInstance, SCANNER);
  const { session } = await enqueueSession(daemon.ctx, inst.id, "admin");
  const done = await waitFor("the session to end", async () => {
    const s = await showSession(daemon.ctx, session.id);
    return s.status !== "queued" && s.status !== "running" ? s : null;
  }, 20_000);
  return { inst, done };
}

describe("a scan whose accountData was lost with its socket", () => {
  it("ends the session authorized with the phone that scanned, not already_logged", async () => {
    const { inst, done } = await sessionWhoseScanWasLost();
    expect(settingsCalls(inst.idInstance)).toBe(1);
    expect(done.status).toBe("authorized");
    expect(done.phone).toBe(SCANNER);
    expect(done.attempts!.map((a) => [a.outcome, a.errorCode])).toEqual([
      ["failed:connection_lost", "connection_lost"],
      ["authorized", null],
    ]);
  });

  it("still catches a wrong phone: the instance is flagged wrong_number", async () => {
    const { inst, done } = await sessionWhoseScanWasLost({ phone: "79990000000" });
    expect(done.status).toBe("wrong_number");
    expect(done.phone).toBe(SCANNER);
    const row = await daemon.ctx.db.instance.findUniqueOrThrow({ where: { id: inst.id } });
    expect(row.attention).toBe("wrong_number");
  });

  it("a first run that finds the instance linked stays already_logged, with no extra provider call", async () => {
    const inst = await simulatedInstance(daemon.ctx, sim, { fate: "authorized" });
    const { session } = await enqueueSession(daemon.ctx, inst.id, "admin");
    const done = await waitFor("the session to end", async () => {
      const s = await showSession(daemon.ctx, session.id);
      return s.status !== "queued" && s.status !== "running" ? s : null;
    }, 20_000);
    expect(done.status).toBe("already_logged");
    expect(done.phone).toBeNull();
    expect(settingsCalls(inst.idInstance)).toBe(0);
  });
});
