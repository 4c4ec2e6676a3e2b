import { randomBytes, randomInt } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { InvalidTokenError, ProviderUnavailableError } from "../../src/greenapi/errors.js";
import { createGreenApiClient, type GreenApiClient } from "../../src/greenapi/rest.js";
import { runRestAttempt, type RestAttemptOptions } from "../../src/greenapi/rest-attempt.js";
import type { QrImage, AttemptNotice } from "../../src/greenapi/types.js";
import { startSimulator, type Script, type Simulator } from "../../src/simulator/index.js";
import { qrPng } from "./fixtures.js";

let sim: Simulator;
beforeAll(async () => {
  sim = await startSimulator({ defaults: { rotationMs: 200, scanAfterMs: 600 } });
});
afterAll(async () => {
  await sim?.close();
});

type Client = RestAttemptOptions["client"];

/** A simulated instance with `script`, and a real REST client for it. */
function instance(script: Partial<Script>, token = randomBytes(20).toString("hex")): { idInstance: string; client: GreenApiClient } {
  const idInstance = String(randomInt(1_000_000_000, 9_999_999_999));
  sim.define({ idInstance, token, ...script });
  return { idInstance, client: createGreenApiClient({ apiUrl: sim.url, idInstance, token }, { timeoutMs: 2000 }) };
}

function run(client: Client, extra: Partial<RestAttemptOptions> = {}) {
  const images: QrImage[] = [];
  const notices: AttemptNotice[] = [];
  const started = Date.now();
  const outcome = runRestAttempt({
    client,
    onQr: async (qr) => void images.push(qr),
    onNotice: (n) => notices.push(n),
    pollMs: 100,
    windowMs: 1500,
    silenceMs: 1000,
    maxMs: 5000,
    ...extra,
  });
  return { images, notices, outcome, elapsed: () => Date.now() - started };
}

function expectDistinctInOrder(images: QrImage[]): void {
  expect(new Set(images.map((i) => i.sha256)).size).toBe(images.length);
  expect(images.map((i) => i.number)).toEqual(images.map((_, n) => n + 1));
  for (const i of images) expect(i.png.subarray(1, 4).toString()).toBe("PNG");
}

/** Timers alive now; the simulator's idle HTTP sockets may drop theirs meanwhile, never add one. */
function timeoutCount(): number {
  return process.getActiveResourcesInfo().filter((r) => r === "Timeout").length;
}

describe("runRestAttempt against the simulator", () => {
  it("a scan: polls distinct QRs, then alreadyLogged means authorized (no phone over REST)", async () => {
    const { client } = instance({ fate: "scan" });
    const h = run(client);
    const outcome = await h.outcome;
    expect(outcome).toEqual({ kind: "authorized", accountData: { stateInstance: "authorized" }, phone: null });
    expect(h.images.length).toBeGreaterThanOrEqual(1);
    expectDistinctInOrder(h.images);
    expect(h.notices.filter((n) => n.kind === "opened")).toHaveLength(1);
    expect(h.elapsed()).toBeLessThan(1500);
  });

  it("never scanned: timed_out when the window passes, with the rotating QRs each handed over once", async () => {
    const { client } = instance({ fate: "never" });
    const h = run(client);
    expect(await h.outcome).toEqual({ kind: "timed_out" });
    expect(h.elapsed()).toBeGreaterThanOrEqual(1500);
    expect(h.elapsed()).toBeLessThan(2500);
    expect(h.images.length).toBeGreaterThanOrEqual(4); // one per 200 ms rotation over 1.5 s
    expectDistinctInOrder(h.images);
  });

  it("an instance already linked: already_logged, without any QR", async () => {
    const { client } = instance({ fate: "authorized" });
    const h = run(client);
    expect(await h.outcome).toEqual({ kind: "already_logged" });
    expect(h.images).toEqual([]);
  });

  it("a refused token: failed/invalid_token at once, the token not in the message", async () => {
    const token = randomBytes(20).toString("hex");
    const { client } = instance({ fate: "wrong_token" }, token);
    const h = run(client);
    const outcome = await h.outcome;
    expect(outcome).toMatchObject({ kind: "failed", reason: "invalid_token" });
    expect(JSON.stringify(outcome)).not.toContain(token);
    expect(h.elapsed()).toBeLessThan(500);
  });

  it("an `error` answer: failed/provider_error", async () => {
    const { client } = instance({ fate: "provider_error", errorMessage: "instance is sleeping" });
    expect(await run(client).outcome).toEqual({
      kind: "failed", reason: "provider_error", message: "provider error answer: instance is sleeping",
    });
  });

  it("answers that are not JSON are retried, then end failed/silent after silenceMs", async () => {
    const { client } = instance({ fate: "garbage", garbage: "not_json" });
    const h = run(client, { silenceMs: 400 });
    const outcome = await h.outcome;
    expect(outcome).toMatchObject({ kind: "failed", reason: "silent" });
    expect(outcome.kind === "failed" && outcome.message).toMatch(/^no answer from the qr call for 400 ms \(last error: .*not JSON/);
    expect(h.notices.filter((n) => n.kind === "poll_failed").length).toBeGreaterThanOrEqual(3);
    expect(h.elapsed()).toBeGreaterThanOrEqual(400);
    expect(h.elapsed()).toBeLessThan(900);
  });

  it("a cancel between polls ends it cancelled promptly, with the signal's reason", async () => {
    const { client } = instance({ fate: "never" });
    const abort = new AbortController();
    const h = run(client, { signal: abort.signal, onQr: async () => abort.abort("operator cancelled") });
    const outcome = await h.outcome;
    expect(outcome).toEqual({ kind: "cancelled", reason: "operator cancelled" });
    expect(h.elapsed()).toBeLessThan(500);
  });

  it("an onQr rejection rejects the session with that error, and polling stops", async () => {
    const { client } = instance({ fate: "never" });
    const boom = new Error("database down");
    let calls = 0;
    const counting: Client = { qr: (s) => (calls++, client.qr(s)), getStateInstance: (s) => client.getStateInstance(s) };
    await expect(run(counting, { onQr: () => Promise.reject(boom) }).outcome).rejects.toBe(boom);
    const after = calls;
    await new Promise((r) => setTimeout(r, 300));
    expect(calls).toBe(after);
  });
});

describe("runRestAttempt with a stand-in client", () => {
  let png: Buffer;
  beforeAll(async () => {
    png = await qrPng("rest-session");
  });

  it("a cancel mid-request aborts the call in flight and ends cancelled at once", async () => {
    let seen: AbortSignal | undefined;
    const hanging: Client = {
      qr: (signal) => {
        seen = signal;
        return new Promise((_, reject) => signal?.addEventListener("abort", () => reject(signal.reason), { once: true }));
      },
      getStateInstance: () => Promise.reject(new Error("not called")),
    };
    const abort = new AbortController();
    const h = run(hanging, { signal: abort.signal });
    await new Promise((r) => setTimeout(r, 50));
    expect(seen?.aborted).toBe(false);
    const before = Date.now();
    abort.abort("worker shutting down");
    expect(await h.outcome).toEqual({ kind: "cancelled", reason: "worker shutting down" });
    expect(Date.now() - before).toBeLessThan(50);
    expect(seen?.aborted).toBe(true);
  });

  it("never has two calls in flight, and spaces them pollMs apart", async () => {
    let inFlight = 0;
    let most = 0;
    const starts: number[] = [];
    const slow: Client = {
      qr: async () => {
        starts.push(Date.now());
        most = Math.max(most, ++inFlight);
        await new Promise((r) => setTimeout(r, 30));
        inFlight--;
        return { type: "qrCode", png };
      },
      getStateInstance: () => Promise.reject(new Error("not called")),
    };
    const h = run(slow, { pollMs: 50, windowMs: 400 });
    expect(await h.outcome).toEqual({ kind: "timed_out" });
    expect(most).toBe(1);
    expect(h.images).toHaveLength(1); // the same image every poll: handed over once
    for (let i = 1; i < starts.length; i++) expect(starts[i]! - starts[i - 1]!).toBeGreaterThanOrEqual(45);
  });

  it("a refused token after a QR, transient errors retried, and every timer cleared on every ending", async () => {
    const baseline = timeoutCount();
    const answers: Array<() => Promise<never> | Promise<{ type: "qrCode"; png: Buffer }>> = [
      () => Promise.resolve({ type: "qrCode", png }),
      () => Promise.reject(new ProviderUnavailableError("GET http://x/qr answered HTTP 502", 502)),
      () => Promise.reject(new InvalidTokenError("GET http://x/qr answered HTTP 401", 401)),
    ];
    let n = 0;
    const scripted: Client = { qr: () => answers[Math.min(n++, answers.length - 1)]!(), getStateInstance: () => Promise.reject(new Error("x")) };
    const h = run(scripted, { pollMs: 20 });
    expect(await h.outcome).toMatchObject({ kind: "failed", reason: "invalid_token" });
    expect(h.notices.map((x) => x.kind)).toEqual(["opened", "poll_failed"]);
    expect(timeoutCount()).toBeLessThanOrEqual(baseline);

    let polls = 0;
    const scanning: Client = {
      qr: async () => (polls++ === 0 ? { type: "qrCode", png } : { type: "alreadyLogged" }),
      getStateInstance: () => Promise.reject(new ProviderUnavailableError("down")),
    };
    // the confirmation call failing does not undo the scan
    const scanned = run(scanning, { pollMs: 20 });
    expect(await scanned.outcome).toEqual({ kind: "authorized", accountData: null, phone: null });
    expect(timeoutCount()).toBeLessThanOrEqual(baseline);
  });

  it("refuses bounds that are not positive", async () => {
    const client: Client = { qr: () => Promise.reject(new Error("x")), getStateInstance: () => Promise.reject(new Error("x")) };
    await expect(run(client, { pollMs: 0 }).outcome).rejects.toThrow(/pollMs must be a positive number/);
    await expect(run(client, { windowMs: Number.NaN }).outcome).rejects.toThrow(/windowMs/);
  });
});
