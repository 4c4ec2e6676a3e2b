import { getEventListeners } from "node:events";
import { beforeAll, describe, expect, it } from "vitest";
import { runSocketAttempt } from "../../src/greenapi/socket-attempt.js";
import { FakeQrSocket, frame, qrFrame, qrPng, start, waitFor } from "./fixtures.js";

let pngs: Buffer[];
beforeAll(async () => {
  pngs = await Promise.all([1, 2, 3, 4, 5, 6].map((i) => qrPng(`session-test-${i}`)));
});

function timeoutCount(): number {
  return process.getActiveResourcesInfo().filter((r) => r === "Timeout").length;
}

describe("onQr", () => {
  it("is awaited one at a time; a burst meanwhile is coalesced to its newest, and a terminal frame waits its turn", async () => {
    const calls: string[] = [];
    let running = 0;
    const h = start({
      onQr: async (qr) => {
        running++;
        expect(running).toBe(1);
        calls.push(`start ${pngs.findIndex((p) => p.equals(qr.png))}`);
        await new Promise((r) => setTimeout(r, 10));
        calls.push(`end ${qr.number}`);
        running--;
      },
    });
    for (const png of pngs) h.socket.send(qrFrame(png));
    h.socket.send(frame("accountData", { wid: "79001234567@c.us" }));
    h.socket.serverClose();
    expect(await h.outcome).toMatchObject({ kind: "authorized" });
    // The first image, then the newest of those that came while it was handled.
    expect(calls).toEqual(["start 0", "end 1", "start 5", "end 2"]);
    expect(h.notices).toContainEqual({ kind: "qr_dropped", count: 4 });
  });

  it("a rejection closes the socket and rejects the session with that error", async () => {
    const boom = new Error("database down");
    const h = start({ onQr: () => Promise.reject(boom) });
    h.socket.send(qrFrame(pngs[0]!));
    h.socket.send(qrFrame(pngs[1]!));
    await expect(h.outcome).rejects.toBe(boom);
    expect(h.socket.closedByClient).toBe(1);
    h.socket.send(frame("accountData", {}));
  });

  it("a synchronous throw is treated like a rejection", async () => {
    const boom = new Error("sync");
    const h = start({
      onQr: () => {
        throw boom;
      },
    });
    h.socket.send(qrFrame(pngs[0]!));
    await expect(h.outcome).rejects.toBe(boom);
  });
});

describe("bounds", () => {
  it("failed/silent when no frame arrives for silenceMs, measured from the last frame", async () => {
    const started = Date.now();
    const h = start({ silenceMs: 150 });
    const feeder = setInterval(() => h.socket.send(frame("keepAlive", null)), 20);
    setTimeout(() => clearInterval(feeder), 300);
    const outcome = await h.outcome;
    clearInterval(feeder);
    expect(outcome).toEqual({ kind: "failed", reason: "silent", message: "no frame for 150 ms" });
    expect(Date.now() - started).toBeGreaterThanOrEqual(420);
    expect(h.socket.closedByClient).toBe(1);
  });

  it("failed/too_long at maxMs even while frames keep coming", async () => {
    const h = start({ silenceMs: 1000, maxMs: 150 });
    const feeder = setInterval(() => h.socket.send(frame("keepAlive", null)), 10);
    const outcome = await h.outcome;
    clearInterval(feeder);
    expect(outcome).toEqual({ kind: "failed", reason: "too_long", message: "no outcome within 150 ms" });
  });

  it("maxMs also bounds a connect that never finishes and an onQr that never returns", async () => {
    let connectSignal: AbortSignal | undefined;
    const stuck = await runSocketAttempt({
      connect: (signal) => {
        connectSignal = signal;
        return new Promise(() => {});
      },
      onQr: async () => {},
      silenceMs: 1000,
      maxMs: 50,
    });
    expect(stuck).toMatchObject({ kind: "failed", reason: "too_long" });
    expect(connectSignal?.aborted).toBe(true);

    const h = start({ onQr: () => new Promise(() => {}), maxMs: 50 });
    h.socket.send(qrFrame(pngs[0]!));
    expect(await h.outcome).toMatchObject({ kind: "failed", reason: "too_long" });
  });

  it("refuses unusable bounds", async () => {
    await expect(runSocketAttempt({ connect: async () => new FakeQrSocket(), onQr: async () => {}, silenceMs: 0, maxMs: 1 })).rejects.toThrow(/silenceMs/);
    await expect(runSocketAttempt({ connect: async () => new FakeQrSocket(), onQr: async () => {}, silenceMs: 1, maxMs: 2 ** 40 })).rejects.toThrow(/maxMs/);
  });
});

describe("cancellation", () => {
  it("an already aborted signal ends cancelled without connecting", async () => {
    let connected = false;
    const outcome = await runSocketAttempt({
      connect: async () => {
        connected = true;
        return new FakeQrSocket();
      },
      onQr: async () => {},
      signal: AbortSignal.abort("shutting down"),
      silenceMs: 1000,
      maxMs: 2000,
    });
    expect(outcome).toEqual({ kind: "cancelled", reason: "shutting down" });
    expect(connected).toBe(false);
  });

  it("an abort during connect ends cancelled, aborts the connect, and closes a socket that opens late", async () => {
    const ac = new AbortController();
    const late = new FakeQrSocket();
    let openLate!: () => void;
    let connectSignal: AbortSignal | undefined;
    const outcome = runSocketAttempt({
      connect: (signal) => {
        connectSignal = signal;
        return new Promise((resolve) => (openLate = () => resolve(late)));
      },
      onQr: async () => {},
      signal: ac.signal,
      silenceMs: 1000,
      maxMs: 2000,
    });
    ac.abort(new Error("worker stopping"));
    expect(await outcome).toEqual({ kind: "cancelled", reason: "worker stopping" });
    expect(connectSignal?.aborted).toBe(true);
    openLate();
    await waitFor(() => late.closedByClient === 1);
    expect(late.listener).toBeUndefined();
  });

  it("an abort during the session and during onQr ends cancelled and releases the signal", async () => {
    const ac = new AbortController();
    const h = start({ signal: ac.signal, onQr: () => new Promise((_, reject) => setTimeout(() => reject(new Error("late")), 30)) });
    h.socket.send(qrFrame(pngs[0]!));
    await waitFor(() => h.socket.listener !== undefined);
    ac.abort();
    expect(await h.outcome).toEqual({ kind: "cancelled", reason: "This operation was aborted" });
    expect(h.socket.closedByClient).toBe(1);
    expect(getEventListeners(ac.signal, "abort")).toHaveLength(0);
    await new Promise((r) => setTimeout(r, 50)); // the late onQr rejection must stay handled
  });
});

describe("resources", () => {
  it("thousands of concurrent sessions end with no timers and no signal listeners left", async () => {
    const before = timeoutCount();
    const ac = new AbortController();
    const harnesses = Array.from({ length: 3000 }, () => start({ signal: ac.signal, silenceMs: 2000, maxMs: 4000 }));
    await waitFor(() => harnesses.every((h) => h.socket.listener !== undefined));
    expect(getEventListeners(ac.signal, "abort")).toHaveLength(3000);
    expect(timeoutCount()).toBeGreaterThanOrEqual(6000); // silence + max timer per session
    harnesses.forEach((h, i) => {
      h.socket.send(qrFrame(pngs[i % pngs.length]!));
      if (i % 3 === 0) h.socket.send(frame("accountData", { wid: "79001234567@c.us" }));
      else if (i % 3 === 1) h.socket.serverClose();
    });
    await new Promise((r) => setImmediate(r)); // let the queued terminal frames run after onQr
    ac.abort();
    const outcomes = await Promise.all(harnesses.map((h) => h.outcome));
    expect(outcomes.filter((o) => o.kind === "authorized")).toHaveLength(1000);
    expect(outcomes.filter((o) => o.kind === "failed")).toHaveLength(1000);
    expect(outcomes.filter((o) => o.kind === "cancelled")).toHaveLength(1000);
    expect(harnesses.every((h) => h.socket.closedByClient === 1)).toBe(true);
    expect(getEventListeners(ac.signal, "abort")).toHaveLength(0);
    expect(timeoutCount()).toBeLessThanOrEqual(before);
  });
});
