import { constants, deflateSync } from "node:zlib";
import { PNG } from "pngjs";
import { PNG_SIGNATURE, pngChunk, pngSize, readGrey8 } from "../lib/png.js";

/**
 * Enlarges a QR PNG for email: the provider's image may be too small to scan from a screen.
 * Nearest-neighbour scaling by a whole factor keeps every module a crisp square. Anything that
 * cannot be read as a PNG is passed through unchanged (the email still carries the live link).
 */

export interface QrPicture {
  png: Buffer;
  width: number;
  height: number;
}

/** Refuse to scale images that would decode to something absurd (a hostile provider frame). */
const MAX_PIXELS = 4_000_000;

export function enlargeQr(png: Buffer, minWidth = 320): QrPicture {
  const declared = pngSize(png);
  // A side of 0 makes any other side pass the pixel bound: pngjs then spent seconds on 0×4294967295.
  const absurd = !declared || declared.width === 0 || declared.height === 0 || declared.width * declared.height > MAX_PIXELS;
  if (absurd) return { png, width: declared?.width ?? 0, height: declared?.height ?? 0 };
  if (declared.width >= minWidth) return { png, ...declared };
  const source = readGrey8(png) ?? greyOf(png);
  if (!source) return { png, width: 0, height: 0 };
  const { width, height } = source;
  const factor = Math.ceil(minWidth / width);
  if (width * factor * height * factor > MAX_PIXELS) return { png, width, height };
  return { png: scaledGreyPng(source, factor), width: width * factor, height: height * factor };
}

type Grey = { width: number; height: number; grey: Uint8Array };

/** Any other PNG, through pngjs, composited over white: a transparent background shows as black in some mail clients. */
function greyOf(png: Buffer): Grey | null {
  let source: PNG;
  try {
    source = PNG.sync.read(png);
  } catch {
    return null;
  }
  const { width, height, data } = source;
  const grey = new Uint8Array(width * height);
  for (let p = 0; p < grey.length; p += 1) {
    const i = p * 4;
    const alpha = data[i + 3]! / 255;
    grey[p] = Math.round((0.299 * data[i]! + 0.587 * data[i + 1]! + 0.114 * data[i + 2]!) * alpha + 255 * (1 - alpha));
  }
  return { width, height, grey };
}

/**
 * The enlarged picture as a 1-bit black-and-white PNG, written here rather than by pngjs's
 * encoder, whose per-pixel passes made it the dearest step of a first-QR email. A QR code is two
 * colours, and a scanner thresholds what it sees anyway; one bit a pixel gives zlib an eighth of
 * the bytes. Each source row becomes one row stored as is (filter 0) and `factor - 1` rows stored
 * as "same as above" (filter 2, all zero bytes), which zlib's run-length strategy squeezes to a
 * couple of kilobytes.
 */
function scaledGreyPng(source: Grey, factor: number): Buffer {
  const { width, height, grey } = source;
  const outWidth = width * factor;
  const stride = Math.ceil(outWidth / 8) + 1;
  const rows = Buffer.alloc(stride * height * factor);
  for (let y = 0; y < height; y += 1) {
    const at = y * factor * stride;
    let byte = 0;
    let bits = 0;
    let o = at + 1;
    for (let x = 0; x < width; x += 1) {
      const white = grey[y * width + x]! >= 128 ? 1 : 0;
      for (let k = 0; k < factor; k += 1) {
        byte = (byte << 1) | white;
        if (++bits === 8) {
          rows[o++] = byte;
          byte = 0;
          bits = 0;
        }
      }
    }
    if (bits > 0) rows[o] = byte << (8 - bits);
    for (let k = 1; k < factor; k += 1) rows[at + k * stride] = 2;
  }
  const header = Buffer.alloc(13);
  header.writeUInt32BE(outWidth, 0);
  header.writeUInt32BE(height * factor, 4);
  header[8] = 1; // bit depth; colour type 0 (grey), deflate, adaptive filtering, no interlace
  return Buffer.concat([PNG_SIGNATURE, pngChunk("IHDR", header), pngChunk("IDAT", deflateSync(rows, { strategy: constants.Z_RLE })), pngChunk("IEND", Buffer.alloc(0))]);
}
