import { crc32, deflateSync, inflateSync } from "node:zlib";

/**
 * Enlarges a QR PNG for email: the provider's image may be too small to scan from a screen.
 * Nearest-neighbour scaling by a whole factor keeps every module a crisp square. A minimal
 * PNG codec (non-interlaced, any colour type and bit depth) so production needs no image library;
 * anything it cannot read is passed through unchanged.
 */

export interface QrPicture {
  png: Buffer;
  width: number;
  height: number;
}

const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const MAX_PIXELS = 4_000_000;
const CHANNELS: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };

interface Header {
  width: number;
  height: number;
  depth: number;
  colorType: number;
  interlace: number;
}

export function enlargeQr(png: Buffer, minWidth = 320): QrPicture {
  const header = readHeader(png);
  if (!header) return { png, width: 0, height: 0 };
  if (header.width >= minWidth) return { png, width: header.width, height: header.height };
  const gray = decodeGray(png, header);
  if (!gray) return { png, width: header.width, height: header.height };
  const factor = Math.ceil(minWidth / header.width);
  const width = header.width * factor;
  const height = header.height * factor;
  return { png: encodeGray(scale(gray, header.width, header.height, factor), width, height), width, height };
}

function chunks(png: Buffer): Array<{ type: string; data: Buffer }> {
  const out: Array<{ type: string; data: Buffer }> = [];
  for (let at = SIGNATURE.length; at + 12 <= png.length; ) {
    const length = png.readUInt32BE(at);
    const type = png.toString("latin1", at + 4, at + 8);
    if (at + 12 + length > png.length) break;
    out.push({ type, data: png.subarray(at + 8, at + 8 + length) });
    at += 12 + length;
    if (type === "IEND") break;
  }
  return out;
}

function readHeader(png: Buffer): Header | null {
  if (png.length < 33 || !png.subarray(0, 8).equals(SIGNATURE) || png.toString("latin1", 12, 16) !== "IHDR") return null;
  const h = { width: png.readUInt32BE(16), height: png.readUInt32BE(20), depth: png[24]!, colorType: png[25]!, interlace: png[28]! };
  if (h.width === 0 || h.height === 0 || h.width * h.height > MAX_PIXELS || CHANNELS[h.colorType] === undefined) return null;
  return h;
}

/** One 8-bit luminance value per pixel, transparency composited over white. */
function decodeGray(png: Buffer, h: Header): Buffer | null {
  if (h.interlace !== 0) return null;
  try {
    const parts = chunks(png);
    const palette = parts.find((c) => c.type === "PLTE")?.data;
    const trns = parts.find((c) => c.type === "tRNS")?.data;
    const raw = inflateSync(Buffer.concat(parts.filter((c) => c.type === "IDAT").map((c) => c.data)));
    const channels = CHANNELS[h.colorType]!;
    const bitsPerPixel = channels * h.depth;
    const stride = Math.ceil((h.width * bitsPerPixel) / 8);
    const rows = unfilter(raw, h.height, stride, Math.max(1, bitsPerPixel / 8));
    if (!rows) return null;
    const out = Buffer.alloc(h.width * h.height);
    for (let y = 0; y < h.height; y++) {
      for (let x = 0; x < h.width; x++) {
        const s = (c: number) => sample(rows, y * stride, x * channels + c, h.depth);
        out[y * h.width + x] = pixelGray(h, s, palette, trns);
      }
    }
    return out;
  } catch {
    return null;
  }
}

function unfilter(raw: Buffer, height: number, stride: number, bpp: number): Buffer | null {
  if (raw.length < height * (stride + 1)) return null;
  const out = Buffer.alloc(height * stride);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)]!;
    if (filter > 4) return null;
    const src = y * (stride + 1) + 1;
    const row = y * stride;
    for (let i = 0; i < stride; i++) {
      const a = i >= bpp ? out[row + i - bpp]! : 0;
      const b = y > 0 ? out[row - stride + i]! : 0;
      const c = i >= bpp && y > 0 ? out[row - stride + i - bpp]! : 0;
      const pred = filter === 0 ? 0 : filter === 1 ? a : filter === 2 ? b : filter === 3 ? (a + b) >> 1 : paeth(a, b, c);
      out[row + i] = (raw[src + i]! + pred) & 0xff;
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

/** The index-th sample of a row, scaled to 0..255 (palette indices are returned raw). */
function sample(rows: Buffer, rowStart: number, index: number, depth: number): number {
  if (depth === 8) return rows[rowStart + index]!;
  if (depth === 16) return rows[rowStart + index * 2]!;
  const bit = index * depth;
  const byte = rows[rowStart + (bit >> 3)]!;
  return (byte >> (8 - depth - (bit & 7))) & ((1 << depth) - 1);
}

function pixelGray(h: Header, s: (c: number) => number, palette?: Buffer, trns?: Buffer): number {
  const full = (v: number) => (h.depth < 8 ? Math.round((v * 255) / ((1 << h.depth) - 1)) : v);
  let r: number, g: number, b: number;
  let alpha = 255;
  if (h.colorType === 3) {
    const i = s(0);
    r = palette?.[i * 3] ?? 0;
    g = palette?.[i * 3 + 1] ?? 0;
    b = palette?.[i * 3 + 2] ?? 0;
    alpha = trns?.[i] ?? 255;
  } else if (h.colorType === 0 || h.colorType === 4) {
    r = g = b = full(s(0));
    if (h.colorType === 4) alpha = s(1);
  } else {
    [r, g, b] = [s(0), s(1), s(2)];
    if (h.colorType === 6) alpha = s(3);
  }
  const lum = (r * 299 + g * 587 + b * 114) / 1000;
  return Math.round((lum * alpha + 255 * (255 - alpha)) / 255);
}

function scale(gray: Buffer, width: number, height: number, factor: number): Buffer {
  const w = width * factor;
  const out = Buffer.alloc(w * height * factor);
  for (let y = 0; y < height * factor; y++) {
    const srcRow = Math.floor(y / factor) * width;
    for (let x = 0; x < w; x++) out[y * w + x] = gray[srcRow + Math.floor(x / factor)]!;
  }
  return out;
}

function chunk(type: string, data: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, "latin1");
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])) >>> 0, 0);
  return Buffer.concat([head, data, crc]);
}

function encodeGray(gray: Buffer, width: number, height: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 0, 0, 0, 0], 8);
  const raw = Buffer.alloc(height * (width + 1));
  for (let y = 0; y < height; y++) gray.copy(raw, y * (width + 1) + 1, y * width, (y + 1) * width);
  return Buffer.concat([SIGNATURE, chunk("IHDR", ihdr), chunk("IDAT", deflateSync(raw)), chunk("IEND", Buffer.alloc(0))]);
}
