import { inflateSync } from "node:zlib";

/**
 * The few pieces of the PNG format this project handles itself: chunks, with the CRC-32 (IEEE
 * 802.3, the polynomial PNG uses) that ends each, and reading the one layout a QR code usually
 * comes in (8-bit grey). Every other decoding is pngjs's.
 */

export const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

// Node 20 has no zlib.crc32; the simulator needs one per tagged QR frame, thousands a second.
const TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n += 1) {
    let c = n;
    for (let k = 0; k < 8; k += 1) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/** The CRC-32 of `bytes`, continuing from `previous` when a value is split over several buffers. */
export function crc32(bytes: Uint8Array, previous = 0): number {
  let c = (previous ^ 0xffffffff) >>> 0;
  for (let i = 0; i < bytes.length; i += 1) c = TABLE[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** One chunk: length, four-letter type, data, and the CRC of type and data. */
export function pngChunk(type: string, data: Buffer): Buffer {
  const chunk = Buffer.allocUnsafe(12 + data.length);
  chunk.writeUInt32BE(data.length, 0);
  chunk.write(type, 4, 4, "latin1");
  data.copy(chunk, 8);
  chunk.writeUInt32BE(crc32(chunk.subarray(4, 8 + data.length)), 8 + data.length);
  return chunk;
}

/** Width and height from the IHDR chunk, read before anything is decoded; null when `png` does not start as a PNG. */
export function pngSize(png: Buffer): { width: number; height: number } | null {
  if (png.length < 24 || !png.subarray(0, 8).equals(PNG_SIGNATURE) || png.toString("latin1", 12, 16) !== "IHDR") return null;
  return { width: png.readUInt32BE(16), height: png.readUInt32BE(20) };
}

/**
 * The pixels of an 8-bit greyscale, non-interlaced PNG without transparency, one byte each, row by
 * row; null for any other layout or anything malformed (the caller falls back to pngjs). It reads
 * no more than width × height pixels, whatever the compressed data would inflate to.
 */
export function readGrey8(png: Buffer): { width: number; height: number; grey: Uint8Array } | null {
  const size = png.length >= 33 ? pngSize(png) : null;
  if (!size) return null;
  const { width, height } = size;
  if (width === 0 || height === 0 || png[24] !== 8 || png[25] !== 0 || png[28] !== 0) return null;
  const data: Buffer[] = [];
  for (let at = 8; at + 12 <= png.length; ) {
    const length = png.readUInt32BE(at);
    const type = png.toString("latin1", at + 4, at + 8);
    if (at + 12 + length > png.length || type === "tRNS") return null;
    if (type === "IDAT") data.push(png.subarray(at + 8, at + 8 + length));
    if (type === "IEND") break;
    at += 12 + length;
  }
  const stride = width + 1;
  let raw: Buffer;
  try {
    raw = inflateSync(Buffer.concat(data), { maxOutputLength: stride * height });
  } catch {
    return null;
  }
  return raw.length === stride * height ? { width, height, grey: unfilter(raw, width, height) } : null;
}

/** Reverses PNG's per-row filters for one byte per pixel (None, Sub, Up, Average, Paeth). */
function unfilter(raw: Buffer, width: number, height: number): Uint8Array {
  const out = new Uint8Array(width * height);
  for (let y = 0; y < height; y += 1) {
    const filter = raw[y * (width + 1)]!;
    const src = y * (width + 1) + 1;
    const row = y * width;
    const up = row - width;
    for (let x = 0; x < width; x += 1) {
      const a = x > 0 ? out[row + x - 1]! : 0;
      const b = y > 0 ? out[up + x]! : 0;
      let predicted = 0;
      if (filter === 1) predicted = a;
      else if (filter === 2) predicted = b;
      else if (filter === 3) predicted = (a + b) >> 1;
      else if (filter === 4) predicted = paeth(a, b, x > 0 && y > 0 ? out[up + x - 1]! : 0);
      out[row + x] = (raw[src + x]! + predicted) & 0xff;
    }
  }
  return out;
}

function paeth(a: number, b: number, c: number): number {
  const p = a + b - c;
  const pa = Math.abs(p - a);
  const pb = Math.abs(p - b);
  const pc = Math.abs(p - c);
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}
