import { beforeAll, describe, expect, it } from "vitest";
import {
  InvalidTokenError,
  ProviderProtocolError,
  ProviderUnavailableError,
  UnknownInstanceError,
} from "../../src/greenapi/errors.js";
import { MAX_FRAME_BYTES } from "../../src/greenapi/frames.js";
import { runSocketAttempt } from "../../src/greenapi/socket-attempt.js";
import type { QrImage } from "../../src/greenapi/types.js";
import { FakeQrSocket, frame, qrFrame, qrPng, start } from "./fixtures.js";

let pngs: Buffer[];
beforeAll(async () => {
  pngs = await Promise.all([1, 2, 3].map((i) => qrPng(`session-test-${i}`)));
});

describe("runSocketAttempt outcomes", () => {
  it("authorized: hands over each QR, then ends with accountData and the phone", async () => {
    const h = start();
    h.socket.send(qrFrame(pngs[0]!));
    h.socket.send(qrFrame(pngs[1]!));
    h.socket.send(frame("accountData", { wid: "79001234567@c.us" }));
    expect(await h.outcome).toEqual({ kind: "authorized", accountData: { wid: "79001234567@c.us" }, phone: "79001234567" });
    expect(h.images.map((i) => [i.number, i.png.equals(pngs[i.number - 1]!)])).toEqual([
      [1, true],
      [2, true],
    ]);
    expect(h.images[0]!.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(h.images[0]!.receivedAt).toBeInstanceOf(Date);
    expect(h.notices).toEqual([{ kind: "opened" }]);
    expect(h.socket.closedByClient).toBe(1);
  });

  it("already_logged", async () => {
    const h = start();
    h.socket.send(frame("alreadyLogged", "instance account already authorized"));
    expect(await h.outcome).toEqual({ kind: "already_logged" });
    expect(h.socket.closedByClient).toBe(1);
  });

  it.each(["timeout", "timeoutExpired"])("timed_out on %s", async (type) => {
    const h = start();
    h.socket.send(qrFrame(pngs[0]!));
    h.socket.send(frame(type, "timeout"));
    expect(await h.outcome).toEqual({ kind: "timed_out" });
  });

  it("failed/provider_error on an error frame", async () => {
    const h = start();
    h.socket.send(frame("error", "instance is not ready"));
    expect(await h.outcome).toEqual({ kind: "failed", reason: "provider_error", message: expect.stringContaining("instance is not ready") });
  });

  it.each([
    ["a non-JSON frame", "<html>502</html>"],
    ["a qrCode that is not a PNG", frame("qrCode", Buffer.from("GIF89a".padEnd(80, "x")).toString("base64"))],
    ["a binary frame", new Uint8Array([0x89, 0x50, 0x4e, 0x47])],
    ["a frame above the size bound", frame("qrCode", "A".repeat(MAX_FRAME_BYTES + 10))],
    ["a frame without type", JSON.stringify({ message: "x" })],
  ])("failed/protocol_error on %s", async (_name, data) => {
    const h = start();
    h.socket.send(data);
    expect(await h.outcome).toMatchObject({ kind: "failed", reason: "protocol_error" });
    expect(h.socket.closedByClient).toBe(1);
  });

  it("failed/protocol_error when the socket reports a protocol violation", async () => {
    const h = start();
    h.socket.fail(new ProviderProtocolError("frame too large"));
    expect(await h.outcome).toMatchObject({ kind: "failed", reason: "protocol_error" });
  });

  it("failed/connection_lost on a close without a terminal message", async () => {
    const h = start();
    h.socket.send(qrFrame(pngs[0]!));
    h.socket.serverClose(1011, "internal");
    expect(await h.outcome).toEqual({
      kind: "failed",
      reason: "connection_lost",
      message: "socket closed (code 1011: internal) without a terminal message",
    });
  });

  it("failed/connection_lost on a socket error", async () => {
    const h = start();
    h.socket.fail(new ProviderUnavailableError("websocket error (ECONNRESET)"));
    expect(await h.outcome).toMatchObject({ kind: "failed", reason: "connection_lost", message: expect.stringContaining("ECONNRESET") });
  });

  it("delivers events the socket received before listen, in order", async () => {
    const socket = new FakeQrSocket();
    socket.send(qrFrame(pngs[0]!));
    socket.send(frame("accountData", "79001234567@c.us"));
    socket.serverClose();
    const images: QrImage[] = [];
    const outcome = await runSocketAttempt({ connect: async () => socket, onQr: async (q) => void images.push(q), silenceMs: 1000, maxMs: 2000 });
    expect(outcome).toMatchObject({ kind: "authorized", phone: "79001234567" });
    expect(images).toHaveLength(1);
  });
});

describe("connect failures", () => {
  it.each([
    [new InvalidTokenError("websocket upgrade answered HTTP 401", 401), "invalid_token"],
    [new UnknownInstanceError("websocket upgrade answered HTTP 404", 404), "unknown_instance"],
    [new ProviderUnavailableError("websocket upgrade answered HTTP 503", 503), "provider_error"],
    [new ProviderUnavailableError("connect failed (ECONNREFUSED)"), "connection_lost"],
    [new Error("boom"), "connection_lost"],
    ["not even an error", "connection_lost"],
  ])("%s → failed/%s", async (err, reason) => {
    const outcome = await runSocketAttempt({
      connect: () => Promise.reject(err),
      onQr: async () => {},
      silenceMs: 1000,
      maxMs: 2000,
    });
    expect(outcome).toMatchObject({ kind: "failed", reason });
  });

  it("a connect that throws synchronously is a failed outcome, not a throw", async () => {
    const outcome = await runSocketAttempt({
      connect: () => {
        throw new Error("sync boom");
      },
      onQr: async () => {},
      silenceMs: 1000,
      maxMs: 2000,
    });
    expect(outcome).toMatchObject({ kind: "failed", reason: "connection_lost", message: expect.stringContaining("sync boom") });
  });

  it("masks a token that a connect error carries", async () => {
    const token = "tok_SECRET_abcdef0123456789";
    const outcome = await runSocketAttempt({
      connect: () => Promise.reject(new Error(`cannot reach https://h/waInstance1/scanqrcode/${token}`)),
      onQr: async () => {},
      silenceMs: 1000,
      maxMs: 2000,
    });
    expect(JSON.stringify(outcome)).not.toContain(token);
  });
});

describe("frames that do not end the session", () => {
  it("reports a repeated image once and does not hand it over again", async () => {
    const images: QrImage[] = [];
    // A synchronous onQr: every frame is looked at as it comes (an async one would coalesce them).
    const h = start({ onQr: (q) => void images.push(q) });
    h.images = images;
    h.socket.send(qrFrame(pngs[0]!));
    h.socket.send(qrFrame(pngs[0]!));
    h.socket.send(qrFrame(pngs[1]!));
    h.socket.send(qrFrame(pngs[0]!));
    h.socket.send(frame("timeout", "timeout"));
    expect(await h.outcome).toEqual({ kind: "timed_out" });
    expect(h.images.map((i) => i.number)).toEqual([1, 2]);
    const dups = h.notices.filter((n) => n.kind === "duplicate_qr");
    expect(dups).toEqual([
      { kind: "duplicate_qr", sha256: h.images[0]!.sha256 },
      { kind: "duplicate_qr", sha256: h.images[0]!.sha256 },
    ]);
  });

  it("records unknown types and carries on", async () => {
    const h = start();
    h.socket.send(frame("passkeyRequired", "x"));
    h.socket.send(qrFrame(pngs[0]!));
    h.socket.send(frame("alreadyLogged", "x"));
    expect(await h.outcome).toEqual({ kind: "already_logged" });
    expect(h.notices).toContainEqual({ kind: "unknown_type", type: "passkeyRequired" });
    expect(h.images).toHaveLength(1);
  });

  it("survives an onNotice that throws", async () => {
    const h = start({
      onNotice: () => {
        throw new Error("observer bug");
      },
    });
    h.socket.send(frame("surprise", 1));
    h.socket.send(frame("alreadyLogged", "x"));
    expect(await h.outcome).toEqual({ kind: "already_logged" });
  });
});
