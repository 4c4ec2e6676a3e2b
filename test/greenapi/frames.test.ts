import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { decodePng, MAX_FRAME_BYTES, parseFrame, phoneOf } from "../../src/greenapi/frames.js";
import { frame, qrFrame, qrPng } from "./fixtures.js";

let png: Buffer;
beforeAll(async () => {
  png = await qrPng("frames-test");
});

describe("parseFrame", () => {
  it("decodes a qrCode frame to the PNG bytes", () => {
    const f = parseFrame(qrFrame(png));
    expect(f).toEqual({ type: "qrCode", png });
  });

  it("accepts a data: URL prefix and wrapped base64", () => {
    const b64 = png.toString("base64");
    const wrapped = b64.replace(/(.{76})/g, "$1\n");
    expect(parseFrame(frame("qrCode", `data:image/png;base64,${b64}`))).toEqual({ type: "qrCode", png });
    expect(parseFrame(frame("qrCode", wrapped))).toEqual({ type: "qrCode", png });
  });

  it("rejects a qrCode whose payload is not a PNG", () => {
    expect(parseFrame(frame("qrCode", Buffer.from("hello, not a png at all........................................................").toString("base64")))).toMatchObject({
      type: "protocolError",
      reason: expect.stringContaining("not a PNG"),
    });
    expect(parseFrame(frame("qrCode", "%%% not base64 %%%"))).toMatchObject({ type: "protocolError", reason: expect.stringContaining("base64") });
    expect(parseFrame(frame("qrCode", 12345))).toMatchObject({ type: "protocolError" });
    expect(parseFrame(frame("qrCode", ""))).toMatchObject({ type: "protocolError" });
    // a PNG signature alone is not a PNG
    expect(parseFrame(frame("qrCode", png.subarray(0, 16).toString("base64")))).toMatchObject({ type: "protocolError" });
    const jpegLike = Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), png.subarray(4)]);
    expect(parseFrame(frame("qrCode", jpegLike.toString("base64")))).toMatchObject({ type: "protocolError" });
  });

  it("refuses an image that declares an absurd size before anything decodes it (a PNG bomb)", () => {
    for (const [width, height] of [[12_000, 12_000], [100, 3_000_000], [0, 99]] as Array<[number, number]>) {
      const bomb = Buffer.from(png);
      bomb.writeUInt32BE(width, 16);
      bomb.writeUInt32BE(height, 20);
      expect(parseFrame(frame("qrCode", bomb.toString("base64")))).toEqual({
        type: "protocolError", reason: `qrCode image declares ${width}×${height} pixels (at most 2048×2048)`,
      });
    }
    expect(parseFrame(qrFrame(png))).toMatchObject({ type: "qrCode" });
  });

  it("parses error, alreadyLogged, timeout and timeoutExpired", () => {
    expect(parseFrame(frame("error", "instance is sleeping"))).toEqual({ type: "error", message: "instance is sleeping" });
    expect(parseFrame(frame("error", { code: 7 }))).toEqual({ type: "error", message: '{"code":7}' });
    expect(parseFrame(frame("alreadyLogged", "instance account already authorized"))).toEqual({ type: "alreadyLogged" });
    expect(parseFrame(frame("timeout", "timeout"))).toEqual({ type: "timeout", wireType: "timeout" });
    expect(parseFrame(frame("timeoutExpired", "x"))).toEqual({ type: "timeout", wireType: "timeoutExpired" });
  });

  it("keeps accountData raw and finds the phone in every form", () => {
    const obj = { wid: "79001234567@c.us", name: "Shop" };
    expect(parseFrame(frame("accountData", obj))).toEqual({ type: "accountData", raw: obj, phone: "79001234567" });
    const json = JSON.stringify(obj);
    expect(parseFrame(frame("accountData", json))).toEqual({ type: "accountData", raw: json, phone: "79001234567" });
    const text = "account 79001234567@c.us authorized";
    expect(parseFrame(frame("accountData", text))).toEqual({ type: "accountData", raw: text, phone: "79001234567" });
    expect(parseFrame(frame("accountData", "no number here"))).toEqual({ type: "accountData", raw: "no number here", phone: null });
    expect(parseFrame(JSON.stringify({ type: "accountData" }))).toEqual({ type: "accountData", raw: undefined, phone: null });
  });

  it("returns unknown types without throwing", () => {
    expect(parseFrame(frame("passkeyRequired", "x"))).toEqual({ type: "unknown", wireType: "passkeyRequired" });
    expect(parseFrame(frame("y".repeat(1000), "x"))).toEqual({ type: "unknown", wireType: "y".repeat(64) });
  });

  it("turns garbage into a protocol error value", () => {
    for (const bad of ["not json", "", "[1,2]", "null", "42", '"qrCode"', '{"message":"x"}', '{"type":7}', '{"type":""}']) {
      expect(parseFrame(bad).type, bad).toBe("protocolError");
    }
    expect(parseFrame(new Uint8Array([1, 2, 3]))).toEqual({ type: "protocolError", reason: "binary frame of 3 bytes" });
  });

  it("refuses a frame above the size bound before parsing it", () => {
    const huge = frame("qrCode", "A".repeat(MAX_FRAME_BYTES));
    expect(parseFrame(huge)).toMatchObject({ type: "protocolError", reason: expect.stringContaining("exceeds") });
  });
});

describe("phoneOf", () => {
  it("prefers the wid field of an object", () => {
    expect(phoneOf({ wid: "111112222@c.us", other: "79001234567@c.us" })).toBe("111112222");
    expect(phoneOf({ nested: { wid: "79001234567@c.us" } })).toBe("79001234567");
    expect(phoneOf(null)).toBeNull();
    expect(phoneOf(79001234567)).toBeNull();
    expect(phoneOf("{not json 79001234567@c.us")).toBe("79001234567");
  });
});

describe("fuzz", () => {
  const types = fc.constantFrom("qrCode", "error", "accountData", "alreadyLogged", "timeout", "timeoutExpired", "other");

  it("never throws on arbitrary text or bytes", () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.string({ unit: "binary" }), fc.uint8Array(), fc.json()), (input) => {
        const f = parseFrame(input);
        expect(typeof f.type).toBe("string");
      }),
      { numRuns: 2000 },
    );
  });

  it("never throws on well-formed frames with arbitrary messages", () => {
    fc.assert(
      fc.property(types, fc.jsonValue(), (type, message) => {
        const f = parseFrame(JSON.stringify({ type, message }));
        expect(typeof f.type).toBe("string");
        if (f.type === "accountData") expect(f.phone === null || /^\d+$/.test(f.phone)).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });

  it("decodePng never throws and returns a PNG or a reason", () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.base64String(), fc.anything()), (message) => {
        const r = decodePng(message);
        expect(typeof r === "string" || Buffer.isBuffer(r)).toBe(true);
      }),
      { numRuns: 1000 },
    );
  });
});
