import { beforeAll, describe, expect, it } from "vitest";
import { parseFrame } from "../../src/greenapi/frames.js";
import { enlargeQr } from "../../src/notify/qr-image.js";
import { pngChunk } from "../../src/lib/png.js";
import { frame, start } from "../greenapi/fixtures.js";
import { goodPngs } from "./hostile.js";

/** Defects the fuzz suite found, each pinned by the input that showed it. */

let good: Buffer[];
beforeAll(async () => {
  good = await goodPngs();
});

const deep = (depth: number) => "[".repeat(depth) + "]".repeat(depth);

describe("found by fuzzing", () => {
  it("an `error` frame whose message nests 10,000 arrays deep is an error outcome, not a thrown RangeError", async () => {
    // String() of such an array recursed past the stack inside the socket's message handler.
    const parsed = parseFrame(`{"type":"error","message":${deep(10_000)}}`);
    expect(parsed).toMatchObject({ type: "error", message: expect.stringMatching(/too large or deep/) });
    const h = start();
    h.socket.send(`{"type":"error","message":${deep(10_000)}}`);
    expect(await h.outcome).toMatchObject({ kind: "failed", reason: "provider_error" });
  });

  it("account data too deep for JSON.stringify and jsonb is replaced by a sentence, so the scan can be recorded", () => {
    // JSON.stringify threw where the attempt's end is written: the scan was never recorded.
    const parsed = parseFrame(`{"type":"accountData","message":[{"wid":"79001234567@c.us"},${deep(5_000)}]}`);
    expect(parsed).toEqual({ type: "accountData", raw: "(a array too large or deep to show)", phone: null });
  });

  it("NUL characters and lone surrogates, which PostgreSQL refuses, are replaced in what a frame carries", () => {
    const error = parseFrame(JSON.stringify({ type: "error", message: "bad\u0000\ud800 news" }));
    expect(error).toEqual({ type: "error", message: "bad\ufffd\ufffd news" });
    const account = parseFrame(JSON.stringify({ type: "accountData", message: { wid: "79001234567@c.us", "k\u0000": ["\udc00"] } }));
    expect(account).toMatchObject({ type: "accountData", phone: "79001234567" });
    expect(JSON.stringify((account as { raw: unknown }).raw)).toBe('{"wid":"79001234567@c.us","k\ufffd":["\ufffd"]}');
    const unknown = parseFrame(JSON.stringify({ type: "odd\u0000type", message: 1 }));
    expect(unknown).toEqual({ type: "unknown", wireType: "odd\ufffdtype" });
  });

  it("a `__proto__` key in account data stays data and pollutes nothing", () => {
    const parsed = parseFrame('{"type":"accountData","message":{"__proto__":{"polluted":true},"wid":"79001234567@c.us"}}');
    const raw = (parsed as { raw: Record<string, unknown> }).raw;
    expect(JSON.stringify(raw)).toBe('{"__proto__":{"polluted":true},"wid":"79001234567@c.us"}');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it("a socket closed with a NUL in its reason ends with a storable message", async () => {
    const h = start();
    h.socket.serverClose(4000, "bye\u0000now");
    expect(await h.outcome).toEqual({ kind: "failed", reason: "connection_lost", message: "socket closed (code 4000: bye\ufffdnow) without a terminal message" });
  });

  it("the email enlargement passes a PNG declaring 0×4294967295 through at once instead of decoding it for seconds", () => {
    const lying = Buffer.from(good[0]!);
    lying.writeUInt32BE(0, 16);
    lying.writeUInt32BE(2 ** 32 - 1, 20);
    pngChunk("IHDR", lying.subarray(16, 29)).copy(lying, 8);
    const out = enlargeQr(lying, 320);
    expect(out.png).toBe(lying);
    expect(out).toMatchObject({ width: 0, height: 2 ** 32 - 1 });
  });

  it("a frame type of odd text is still a frame", () => {
    expect(parseFrame(frame("\ud83d", null))).toEqual({ type: "unknown", wireType: "\ufffd" });
  });
});
