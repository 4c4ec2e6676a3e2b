import { createHash } from "node:crypto";
import jsqr from "jsqr";
import { PNG } from "pngjs";
import { afterEach, describe, expect, it } from "vitest";
import { createLogger } from "../../src/log.js";
import {
  FRAME_TAG_KEYWORD, crc32, startSimulator, withTextChunk, type SentQrFrame, type Simulator,
} from "../../src/simulator/index.js";
import { runSession } from "./client.js";

const jsQR = jsqr.default;
const silent = createLogger({ level: "silent" });
const ID = "7105000001";
const TOKEN = "e".repeat(50);

let sim: Simulator | undefined;
afterEach(async () => {
  await sim?.close();
  sim = undefined;
});

/** Chunk types in file order, with the text of every tEXt chunk. */
function chunksOf(png: Buffer): Array<{ type: string; text?: string }> {
  const out: Array<{ type: string; text?: string }> = [];
  for (let at = 8; at < png.length; ) {
    const length = png.readUInt32BE(at);
    const type = png.toString("latin1", at + 4, at + 8);
    out.push(type === "tEXt" ? { type, text: png.toString("latin1", at + 8, at + 8 + length) } : { type });
    at += 12 + length;
  }
  return out;
}

function decode(png: Buffer): string | null {
  const image = PNG.sync.read(png, { checkCRC: true });
  return jsQR(new Uint8ClampedArray(image.data), image.width, image.height)?.data ?? null;
}

describe("CRC-32", () => {
  it("matches the standard check value and continues across buffers", () => {
    expect(crc32(Buffer.from("123456789"))).toBe(0xcbf43926);
    expect(crc32(Buffer.alloc(0))).toBe(0);
    expect(crc32(Buffer.from("6789"), crc32(Buffer.from("12345")))).toBe(0xcbf43926);
  });
});

describe("withTextChunk", () => {
  it("inserts a tEXt chunk right after IHDR with a correct CRC; the picture is unchanged", async () => {
    sim = await startSimulator({ log: silent, instances: [{ idInstance: ID, token: TOKEN }] });
    const res = await fetch(`${sim.url}/waInstance${ID}/qr/${TOKEN}`);
    const original = Buffer.from(((await res.json()) as { message: string }).message, "base64");
    const tagged = withTextChunk(original, "qrfleet-sim", "7105000001:1:1");
    expect(chunksOf(tagged).slice(0, 3)).toEqual([{ type: "IHDR" }, { type: "tEXt", text: "qrfleet-sim\u00007105000001:1:1" }, chunksOf(original)[1]]);
    const chunk = tagged.subarray(33, 33 + 12 + "qrfleet-sim\u00007105000001:1:1".length);
    expect(chunk.readUInt32BE(chunk.length - 4)).toBe(crc32(chunk.subarray(4, chunk.length - 4)));
    expect(decode(tagged)).toBe(decode(original));
    expect(decode(tagged)).toBe(sim.currentQr(ID));
  });

  it("computes the same CRC as the encoder that wrote the pooled PNG, chunk by chunk", () => {
    // pngjs skips ancillary chunks without checking them, so the CRC is checked against its own writer.
    const png = PNG.sync.write(Object.assign(new PNG({ width: 3, height: 2 }), { data: Buffer.alloc(24, 7) }));
    for (let at = 8; at < png.length; ) {
      const length = png.readUInt32BE(at);
      expect(crc32(png.subarray(at + 4, at + 8 + length))).toBe(png.readUInt32BE(at + 8 + length));
      at += 12 + length;
    }
  });

  it("refuses what is not a PNG, and a keyword PNG does not allow", () => {
    expect(() => withTextChunk(Buffer.from("not a png at all, not even close to one"), "k", "t")).toThrow(/not a PNG/);
    const png = PNG.sync.write(Object.assign(new PNG({ width: 1, height: 1 }), { data: Buffer.alloc(4, 255) }));
    expect(() => withTextChunk(png, "", "t")).toThrow(/keyword/);
    expect(() => withTextChunk(png, "x".repeat(80), "t")).toThrow(/keyword/);
  });
});

describe("tagged image mode", () => {
  it("every frame is a valid PNG with unique bytes that decodes to the pooled QR; the hook sees each sha256", async () => {
    const sent: SentQrFrame[] = [];
    sim = await startSimulator({
      log: silent,
      imageMode: "tagged",
      imagePoolSize: 3,
      hooks: { qrFrame: (f) => sent.push(f) },
      instances: [{ idInstance: ID, token: TOKEN, fate: "never", rotationMs: 60, scanWindowMs: 700 }],
    });
    const first = await runSession(sim, ID, TOKEN);
    const second = await runSession(sim, ID, TOKEN);
    const frames = [first, second].flatMap((s, c) =>
      s.received.filter((r) => r.frame?.type === "qrCode").map((r, i) => ({ c: c + 1, i: i + 1, png: Buffer.from(r.frame!.message as string, "base64"), shown: r.currentQr })),
    );
    expect(frames.length).toBeGreaterThan(6);
    const hashes = frames.map((f) => createHash("sha256").update(f.png).digest("hex"));
    expect(new Set(hashes).size).toBe(frames.length);
    for (const f of frames) {
      expect(chunksOf(f.png)[1]).toEqual({ type: "tEXt", text: `${FRAME_TAG_KEYWORD}\u0000${ID}:${f.c}:${f.i}` });
      expect(decode(f.png)).toBe(f.shown);
      expect(f.shown).toMatch(/^qrfleet-sim:pool:[0-2]:/);
    }
    // Three pooled pictures, never rendered again, whatever the number of frames.
    expect(new Set(frames.map((f) => f.shown)).size).toBe(3);
    expect(sim.stats().images).toMatchObject({ mode: "tagged", rendered: 3 });
    expect(sent.map((f) => f.sha256)).toEqual(hashes);
    expect(sent.map((f) => [f.idInstance, f.connection, f.rotation])).toEqual(frames.map((f) => [ID, f.c, f.i]));
  });
});
