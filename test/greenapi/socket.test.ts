import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  InvalidTokenError,
  ProviderRateLimitedError,
  ProviderUnavailableError,
  UnknownInstanceError,
} from "../../src/greenapi/errors.js";
import { runSocketAttempt } from "../../src/greenapi/socket-attempt.js";
import { connectorFor, openQrSocket } from "../../src/greenapi/socket.js";
import type { InstanceAddress, QrImage, AttemptOutcome } from "../../src/greenapi/types.js";
import { frame, qrFrame, qrPng, waitFor } from "./fixtures.js";
import { freePort, startProvider, type StandInProvider } from "./provider.js";

const TOKEN = "tok_SECRET_abcdef0123456789";
let provider: StandInProvider;
let addr: InstanceAddress;
let pngs: Buffer[];

beforeAll(async () => {
  provider = await startProvider();
  pngs = await Promise.all([1, 2, 3].map((i) => qrPng(`socket-test-${i}`)));
});
afterAll(() => provider.close());
beforeEach(() => {
  provider.requests.length = 0;
  provider.sockets.length = 0;
  addr = { apiUrl: provider.apiUrl, idInstance: "7103000001", token: TOKEN };
});

function expectNoToken(value: unknown): void {
  const e = value as Error;
  const texts = value instanceof Error ? [String(e), e.message, e.stack ?? "", JSON.stringify(e)] : [JSON.stringify(value)];
  for (const text of texts) expect(text).not.toContain(TOKEN);
}

async function session(overrides: { silenceMs?: number; maxMs?: number; signal?: AbortSignal; maxPayload?: number } = {}) {
  const images: QrImage[] = [];
  const outcome = await runSocketAttempt({
    connect: connectorFor(addr, { timeoutMs: 500, maxPayload: overrides.maxPayload }),
    onQr: async (qr) => void images.push(qr),
    silenceMs: overrides.silenceMs ?? 2000,
    maxMs: overrides.maxMs ?? 5000,
    signal: overrides.signal,
  });
  expectNoToken(outcome);
  return { outcome, images };
}

describe("openQrSocket upgrade failures", () => {
  it.each([
    [401, InvalidTokenError, "invalid_token"],
    [403, InvalidTokenError, "invalid_token"],
    [404, UnknownInstanceError, "unknown_instance"],
    [500, ProviderUnavailableError, "provider_error"],
    [502, ProviderUnavailableError, "provider_error"],
  ])("HTTP %i → %o, and the session ends failed/%s", async (status, type, reason) => {
    provider.upgrade = () => status;
    const err = await openQrSocket(addr, { timeoutMs: 500 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(type);
    expect(err).toMatchObject({ status });
    expect((err as Error).message).toContain(`/waInstance7103000001/scanqrcode/*** upgrade answered HTTP ${status}`);
    expectNoToken(err);
    expect(provider.requests[0]?.url).toBe(`/waInstance7103000001/scanqrcode/${TOKEN}`);
    const { outcome } = await session();
    expect(outcome).toMatchObject({ kind: "failed", reason });
  });

  it("an upgrade that never answers times out as provider_unavailable", async () => {
    provider.upgrade = () => "hang";
    const started = Date.now();
    const err = await openQrSocket(addr, { timeoutMs: 200 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProviderUnavailableError);
    expect((err as Error).message).toContain("no upgrade within 200 ms");
    expect(Date.now() - started).toBeLessThan(1500);
    expectNoToken(err);
    expect((await session()).outcome).toMatchObject({ kind: "failed", reason: "connection_lost" });
  });

  it("a refused connection is provider_unavailable with the errno, and connection_lost for the session", async () => {
    addr = { ...addr, apiUrl: `http://127.0.0.1:${await freePort()}` };
    const err = await openQrSocket(addr, { timeoutMs: 500 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProviderUnavailableError);
    expect((err as Error).message).toContain("ECONNREFUSED");
    expectNoToken(err);
    expect((await session()).outcome).toMatchObject({ kind: "failed", reason: "connection_lost" });
  });

  it("an abort while connecting rejects with the reason; the session ends cancelled", async () => {
    provider.upgrade = () => "hang";
    const ac = new AbortController();
    const reason = new Error("stop");
    setTimeout(() => ac.abort(reason), 30);
    await expect(openQrSocket(addr, { timeoutMs: 2000, signal: ac.signal })).rejects.toBe(reason);
    const ac2 = new AbortController();
    setTimeout(() => ac2.abort("shutdown"), 30);
    expect((await session({ signal: ac2.signal })).outcome).toEqual({ kind: "cancelled", reason: "shutdown" });
  });
});

describe("a provider that answers the upgrade 429", () => {
  const upgrades = () => provider.requests.filter((r) => r.method === "UPGRADE");

  it("waits as long as Retry-After says, then opens the socket: the attempt goes on", async () => {
    const plans = [{ status: 429, headers: { "retry-after": "1" } }];
    provider.upgrade = () => plans.shift() ?? ((ws) => ws.send(frame("alreadyLogged", "x")));
    const started = Date.now();
    expect((await session()).outcome).toEqual({ kind: "already_logged" });
    expect(upgrades()).toHaveLength(2);
    expect(Date.now() - started).toBeGreaterThanOrEqual(950);
  });

  it("gives up after its retries, ending failed/provider_error on the 429 with no token in it", async () => {
    provider.upgrade = () => ({ status: 429, headers: { "retry-after": "garbage" } });
    const err = await openQrSocket(addr, { timeoutMs: 500, retryAfterMaxMs: 50 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProviderRateLimitedError);
    expect(err).toMatchObject({ status: 429, retryAfterMs: 50 }); // unreadable: the fallback, bounded
    expectNoToken(err);
    provider.requests.length = 0;
    const outcome = await runSocketAttempt({
      connect: connectorFor(addr, { timeoutMs: 500, rateLimitRetries: 2, retryAfterMaxMs: 50 }),
      onQr: () => undefined, silenceMs: 2000, maxMs: 5000,
    });
    expect(outcome).toMatchObject({ kind: "failed", reason: "provider_error" });
    expect((outcome as { message: string }).message).toContain("429");
    expectNoToken(outcome);
    expect(upgrades()).toHaveLength(3);
  });

  it("stops waiting when the attempt is cancelled during a long Retry-After", async () => {
    provider.upgrade = () => ({ status: 429, headers: { "retry-after": "30" } });
    const cancel = new AbortController();
    setTimeout(() => cancel.abort("cancelled by an admin"), 300);
    const started = Date.now();
    expect((await session({ signal: cancel.signal })).outcome).toMatchObject({ kind: "cancelled" });
    expect(Date.now() - started).toBeLessThan(5000);
    expect(upgrades()).toHaveLength(1);
  });
});

describe("runSocketAttempt over a real websocket", () => {
  it("authorized: frames sent right after the upgrade are not lost, and the client closes", async () => {
    provider.upgrade = () => (ws) => {
      ws.send(qrFrame(pngs[0]!));
      ws.send(qrFrame(pngs[0]!));
      ws.send(qrFrame(pngs[1]!));
      setTimeout(() => ws.send(frame("accountData", JSON.stringify({ wid: "79001234567@c.us" }))), 30);
    };
    const { outcome, images } = await session();
    expect(outcome).toMatchObject({ kind: "authorized", phone: "79001234567" });
    expect(images.map((i) => i.png.equals(pngs[i.number - 1]!))).toEqual([true, true]);
    await waitFor(() => provider.sockets[0]?.readyState === 3);
  });

  it.each([
    ["alreadyLogged", { kind: "already_logged" }],
    ["timeout", { kind: "timed_out" }],
    ["timeoutExpired", { kind: "timed_out" }],
  ] as const)("%s frame", async (type, expected: AttemptOutcome) => {
    provider.upgrade = () => (ws) => ws.send(frame(type, "x"));
    expect((await session()).outcome).toEqual(expected);
  });

  it("a close without a terminal message is connection_lost with the close code", async () => {
    provider.upgrade = () => (ws) => {
      ws.send(qrFrame(pngs[0]!));
      setTimeout(() => ws.close(4000, "bye"), 20);
    };
    expect((await session()).outcome).toEqual({
      kind: "failed",
      reason: "connection_lost",
      message: "socket closed (code 4000: bye) without a terminal message",
    });
  });

  it("a dropped TCP connection is connection_lost", async () => {
    provider.upgrade = () => (ws) => setTimeout(() => ws.terminate(), 20);
    expect((await session()).outcome).toMatchObject({ kind: "failed", reason: "connection_lost" });
  });

  it("a frame over maxPayload fails cleanly as protocol_error", async () => {
    provider.upgrade = () => (ws) => ws.send(frame("qrCode", "A".repeat(2 * 1024 * 1024)));
    expect((await session()).outcome).toMatchObject({ kind: "failed", reason: "protocol_error", message: expect.stringContaining("too large") });
    provider.upgrade = () => (ws) => ws.send(qrFrame(pngs[0]!));
    expect((await session({ maxPayload: 64 })).outcome).toMatchObject({ kind: "failed", reason: "protocol_error" });
  });

  it("a binary frame, a non-JSON frame and invalid UTF-8 are protocol_error", async () => {
    provider.upgrade = () => (ws) => ws.send(Buffer.from([1, 2, 3]), { binary: true });
    expect((await session()).outcome).toMatchObject({ kind: "failed", reason: "protocol_error", message: "binary frame of 3 bytes" });
    provider.upgrade = () => (ws) => ws.send("<html>Bad Gateway</html>");
    expect((await session()).outcome).toMatchObject({ kind: "failed", reason: "protocol_error" });
    provider.upgrade = () => (ws) => ws.send(Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), { binary: false });
    expect((await session()).outcome).toMatchObject({ kind: "failed", reason: "protocol_error" });
  });

  it("an error frame is provider_error", async () => {
    provider.upgrade = () => (ws) => ws.send(frame("error", "instance is not ready"));
    expect((await session()).outcome).toMatchObject({ kind: "failed", reason: "provider_error" });
  });

  it("a silent socket ends failed/silent and is closed", async () => {
    provider.upgrade = () => () => {};
    expect((await session({ silenceMs: 150 })).outcome).toMatchObject({ kind: "failed", reason: "silent" });
    await waitFor(() => provider.sockets[0]?.readyState === 3);
  });

  it("a cancel mid-session ends cancelled and closes the socket", async () => {
    provider.upgrade = () => (ws) => ws.send(qrFrame(pngs[2]!));
    const ac = new AbortController();
    setTimeout(() => ac.abort("operator cancelled"), 100);
    const { outcome, images } = await session({ signal: ac.signal });
    expect(outcome).toEqual({ kind: "cancelled", reason: "operator cancelled" });
    expect(images).toHaveLength(1);
    await waitFor(() => provider.sockets[0]?.readyState === 3);
  });
});
