import { afterEach, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import { createLogger } from "../../src/log.js";
import { startSimulator, type Simulator, type SocketEvent } from "../../src/simulator/index.js";
import { openSession, waitFor } from "./client.js";

const silent = createLogger({ level: "silent" });
let sim: Simulator | undefined;
afterEach(async () => {
  await sim?.close();
  sim = undefined;
});

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("simulator freeze()", () => {
  it("stops rotation, timeouts and scans; sockets stay open, and one opened later stays silent", async () => {
    sim = await startSimulator({
      log: silent,
      // The scan comes late enough that a busy machine still freezes before it.
      defaults: { rotationMs: 50, scanWindowMs: 1_200, scanAfterMs: 1_000 },
      instances: [
        { idInstance: "7106000001", token: "t1", fate: "never" },
        { idInstance: "7106000002", token: "t2", fate: "scan" },
        { idInstance: "7106000003", token: "t3", fate: "never" },
      ],
    });
    const openedAt = Date.now();
    const rotating = openSession(sim, "7106000001", "t1");
    const scanned = openSession(sim, "7106000002", "t2");
    await waitFor(() => rotating.received.length >= 2 && scanned.received.length >= 2);
    sim.freeze();
    const counts = [rotating.received.length, scanned.received.length];
    const sent = sim.stats().qrFramesSent;
    const late = openSession(sim, "7106000003", "t3");
    await late.opened;
    // Past the scan window and the scan time of both sockets.
    await pause(Math.max(200, openedAt + 1_400 - Date.now()));
    expect([rotating.received.length, scanned.received.length]).toEqual(counts);
    expect(late.received).toEqual([]);
    expect(sim.stats()).toMatchObject({ qrFramesSent: sent, timeouts: 0, scans: 0 });
    expect(sim.state("7106000002")).toBe("notAuthorized");
    for (const s of [rotating, scanned, late]) expect(s.ws.readyState).toBe(WebSocket.OPEN);
    expect(sim.openSockets()).toBe(3);
  });

  it("reports every socket opened and closed to its hooks", async () => {
    const events: Array<["open" | "close", SocketEvent]> = [];
    sim = await startSimulator({
      log: silent,
      hooks: { socketOpened: (e) => events.push(["open", e]), socketClosed: (e) => events.push(["close", e]) },
      instances: [{ idInstance: "7106000004", token: "t4", fate: "never", rotationMs: 50, scanWindowMs: 120 }],
    });
    await openSession(sim, "7106000004", "t4").done;
    await openSession(sim, "7106000004", "t4").done;
    await waitFor(() => events.length === 4);
    expect(events.map(([kind, e]) => [kind, e.idInstance, e.connection])).toEqual([
      ["open", "7106000004", 1], ["close", "7106000004", 1], ["open", "7106000004", 2], ["close", "7106000004", 2],
    ]);
    events.forEach(([, e]) => expect(e.at).toBeGreaterThan(Date.now() - 10_000));
  });
});
