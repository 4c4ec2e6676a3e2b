import { deflateSync } from "node:zlib";
import fc from "fast-check";
import QRCode from "qrcode";
import { MAX_FRAME_BYTES, MAX_QR_SIDE } from "../../src/greenapi/frames.js";
import { pngChunk, PNG_SIGNATURE } from "../../src/lib/png.js";
import { withTextChunk } from "../../src/simulator/png-text.js";

/**
 * What a hostile or broken provider can send, as fast-check arbitraries: malformed JSON, wrong
 * types, huge and deeply nested values, unknown types, base64 that is not a PNG, PNGs that lie
 * about their size (bombs around MAX_QR_SIDE), truncated or corrupt zlib, odd unicode and
 * `__proto__` keys. Shared by the three levels of the fuzz suite.
 */

/** Runs of a property: `FUZZ_RUNS` multiplies every count (read here, in the tests, never in src/). */
export function runs(base: number): number {
  const factor = Number(process.env.FUZZ_RUNS ?? "1");
  return Math.max(1, Math.round(base * (Number.isFinite(factor) && factor > 0 ? factor : 1)));
}

/** Real QR PNGs as the provider sends them (grey 8-bit from the simulator's renderer is one; qrcode's RGBA another). */
export async function goodPngs(): Promise<Buffer[]> {
  const texts = ["2@fuzz-one,abc=", "2@fuzz-two,def=", "2@fuzz-three,ghi="];
  return Promise.all(texts.map((t, i) => QRCode.toBuffer(t, { type: "png", width: 64 + 40 * i, margin: 1 })));
}

/** A minimal PNG of `width`×`height` (colour type and depth as given) over `idat`: the size may lie. */
export function pngWith(width: number, height: number, idat: Buffer, opts: { depth?: number; colour?: number; interlace?: number } = {}): Buffer {
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width >>> 0, 0);
  header.writeUInt32BE(height >>> 0, 4);
  header[8] = opts.depth ?? 8;
  header[9] = opts.colour ?? 0;
  header[12] = opts.interlace ?? 0;
  return Buffer.concat([PNG_SIGNATURE, pngChunk("IHDR", header), pngChunk("IDAT", idat), pngChunk("IEND", Buffer.alloc(0))]);
}

/**
 * Decompression bombs: a few kB of deflate that inflate to exactly what the declared 8-bit grey
 * size needs (every row filter 0, every pixel black), at sides around MAX_QR_SIDE and far above it.
 */
export function bombs(): Buffer[] {
  return (bombCache ??= makeBombs());
}

let bombCache: Buffer[] | undefined;

function makeBombs(): Buffer[] {
  const sides = [MAX_QR_SIDE - 1, MAX_QR_SIDE, MAX_QR_SIDE + 1];
  const out = sides.map((side) => pngWith(side, side, deflateSync(Buffer.alloc((side + 1) * side))));
  // A frame that declares 12000×12000 over a small stream: what a provider could send in 187 kB.
  out.push(pngWith(12_000, 12_000, deflateSync(Buffer.alloc(4_000_000))));
  // Within MAX_QR_SIDE on one side, absurd on the other; and the widest a u32 can say.
  out.push(pngWith(1, 2 ** 31 - 1, deflateSync(Buffer.alloc(1024))), pngWith(2 ** 32 - 1, 1, deflateSync(Buffer.alloc(1024))));
  return out;
}

const known = ["qrCode", "error", "accountData", "alreadyLogged", "timeout", "timeoutExpired"] as const;

/** Strings a JSON parser or a database chokes on: NUL, lone surrogates, control and bidi characters, emoji. */
export const oddText = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: "binary", maxLength: 40 }),
  fc.constantFrom("\u0000", "a\u0000b", "\ud800", "x\udc00y", "\u202e\u2066", "\ufeff", "👩‍👩‍👧‍👦", "\r\n\t\u0007", "%00", "${7*7}", "<script>"),
  fc.array(fc.constantFrom("\u0000", "\ud83d", "\ude00", "é", "\u0301", "a"), { maxLength: 30 }).map((a) => a.join("")),
);

/** A deeply nested JSON text: arrays, objects or a mix, up to hundreds of thousands deep. */
export const deepJson = fc
  .record({ depth: fc.oneof(fc.integer({ min: 1, max: 64 }), fc.constantFrom(1000, 10_000, 100_000, 300_000)), kind: fc.constantFrom("array", "object", "mixed") })
  .map(({ depth, kind }) => {
    if (kind === "array") return "[".repeat(depth) + "]".repeat(depth);
    if (kind === "object") return '{"a":'.repeat(depth) + "1" + "}".repeat(depth);
    return '[{"a":'.repeat(depth) + "1" + "}]".repeat(depth);
  });

/** A `message` value: any JSON, odd text, huge strings, `__proto__` objects, or a deep structure. */
export const messageValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.jsonValue({ maxDepth: 4 }),
  oddText,
  fc.constantFrom(null, true, 0, -1, 1e308, "", []),
  fc.integer({ min: 1, max: 64 }).map((k) => "x".repeat(k * 16_384)),
  fc.record({ wid: fc.oneof(oddText, fc.constant("79001234567@c.us"), fc.constant(5)) }),
  fc.constant(JSON.parse('{"__proto__":{"polluted":true},"constructor":{"prototype":{"polluted":true}},"wid":"79001234567@c.us"}') as unknown),
  deepJson.map((text) => {
    try {
      const value = JSON.parse(text) as unknown;
      JSON.stringify(value); // it must go back on the wire; the deepest go there as text (see hostileFrame)
      return value;
    } catch {
      return text;
    }
  }),
);

/** A PNG made hostile from a good one: lying size, truncated, bytes flipped, corrupt zlib, extra chunks, other layouts. */
export function mutatedPng(good: Buffer[]): fc.Arbitrary<Buffer> {
  const base = fc.constantFrom(...good);
  const side = fc.oneof(fc.constantFrom(0, 1, MAX_QR_SIDE - 1, MAX_QR_SIDE, MAX_QR_SIDE + 1, 12_000, 2 ** 31 - 1, 2 ** 32 - 1), fc.integer({ min: 0, max: 5000 }));
  return fc.oneof(
    base,
    fc.record({ png: base, w: side, h: side, fixCrc: fc.boolean() }).map(({ png, w, h, fixCrc }) => lieAboutSize(png, w, h, fixCrc)),
    fc.record({ png: base, at: fc.nat() }).map(({ png, at }) => png.subarray(0, at % (png.length + 1))),
    fc.record({ png: base, flips: fc.array(fc.record({ at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }), { minLength: 1, maxLength: 8 }) }).map(({ png, flips }) => {
      const copy = Buffer.from(png);
      for (const { at, bit } of flips) copy[at % copy.length]! ^= 1 << bit;
      return copy;
    }),
    fc.record({ w: fc.integer({ min: 1, max: 300 }), h: fc.integer({ min: 1, max: 300 }), data: fc.uint8Array({ maxLength: 2000 }) }).map(({ w, h, data }) => pngWith(w, h, Buffer.from(data))),
    fc.record({ w: fc.integer({ min: 1, max: 200 }), h: fc.integer({ min: 1, max: 200 }), cut: fc.nat() }).map(({ w, h, cut }) => {
      const z = deflateSync(Buffer.alloc((w + 1) * h, 0x40));
      return pngWith(w, h, z.subarray(0, cut % (z.length + 1)));
    }),
    fc.record({
      w: fc.integer({ min: 1, max: 120 }), h: fc.integer({ min: 1, max: 120 }),
      depth: fc.constantFrom(1, 2, 4, 8, 16, 3, 0, 255), colour: fc.constantFrom(0, 2, 3, 4, 6, 1, 7), interlace: fc.constantFrom(0, 1, 2),
      filler: fc.integer({ min: 0, max: 255 }),
    }).map(({ w, h, depth, colour, interlace, filler }) => pngWith(w, h, deflateSync(Buffer.alloc((w * 8 + 1) * h, filler)), { depth, colour, interlace })),
    fc.record({ png: base, keyword: fc.constantFrom("qrfleet-sim", "Comment", "x"), text: fc.string({ maxLength: 200 }) }).map(({ png, keyword, text }) =>
      withTextChunk(png, keyword, text.replace(/[^\x20-\x7e]/g, "?")),
    ),
    fc.uint8Array({ maxLength: 400 }).map((b) => Buffer.concat([PNG_SIGNATURE, Buffer.from(b)])),
  );
}

function lieAboutSize(png: Buffer, width: number, height: number, fixCrc: boolean): Buffer {
  const copy = Buffer.from(png);
  copy.writeUInt32BE(width >>> 0, 16);
  copy.writeUInt32BE(height >>> 0, 20);
  if (fixCrc) pngChunk("IHDR", copy.subarray(16, 29)).copy(copy, 8);
  return copy;
}

/** A `qrCode` message: base64 of a PNG (good or hostile), as a data URL, wrapped at 76 columns, or not base64 at all. */
export function qrMessage(good: Buffer[]): fc.Arbitrary<unknown> {
  const b64 = fc.oneof({ weight: 8, arbitrary: mutatedPng(good) }, { weight: 1, arbitrary: fc.constantFrom(...bombs()) }).map((png) => png.toString("base64"));
  return fc.oneof(
    b64,
    b64.map((s) => `data:image/png;base64,${s}`),
    b64.map((s) => s.replace(/(.{76})/g, "$1\n")),
    b64.map((s) => s.slice(0, -1)),
    fc.base64String({ maxLength: 400 }),
    fc.constantFrom("", "====", "R0lGODlhAQABAAAAACw=", "not base64 at all!", "iVBORw0KGgo"),
    messageValue,
  );
}

/** One text frame, as the socket receives it. */
export function hostileFrame(good: Buffer[]): fc.Arbitrary<string | Uint8Array> {
  const type = fc.oneof(fc.constantFrom(...known), fc.constantFrom("passkeyRequired", "qrcode", "QRCODE", "__proto__", "constructor", ""), oddText);
  const object = fc.oneof(
    fc.record({ type: fc.constant("qrCode"), message: qrMessage(good) }),
    fc.record({ type, message: messageValue }),
    fc.record({ type: fc.oneof(messageValue, fc.constant(undefined)), message: messageValue }, { requiredKeys: [] }),
  );
  return fc.oneof(
    { weight: 6, arbitrary: object.map((o) => JSON.stringify(o) ?? "null") },
    { weight: 1, arbitrary: object.map((o) => `{"__proto__":{"type":"accountData"},${(JSON.stringify(o) ?? "{}").slice(1)}`) },
    { weight: 1, arbitrary: fc.string({ maxLength: 200 }) },
    { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v) ?? "null") },
    { weight: 1, arbitrary: deepJson.map((d) => `{"type":"error","message":${d}}`) },
    { weight: 1, arbitrary: deepJson.map((d) => `{"type":"accountData","message":${d}}`) },
    { weight: 1, arbitrary: fc.constantFrom(`{"type":"qrCode","message":"${"A".repeat(MAX_FRAME_BYTES)}"}`, "x".repeat(MAX_FRAME_BYTES + 1), "{".repeat(50_000)) },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 64 }) },
  );
}

/** A well-formed QR frame of one of the good images (made distinct by `k`). */
export function goodQrFrame(good: Buffer[], k: number): string {
  const png = withTextChunk(good[k % good.length]!, "fuzz", String(k));
  return JSON.stringify({ type: "qrCode", message: png.toString("base64") });
}
