import { PNG_SIGNATURE as SIGNATURE, pngChunk } from "../lib/png.js";

/** Signature (8) + IHDR chunk: length (4), type (4), 13 bytes of data, CRC (4). */
const AFTER_IHDR = 8 + 4 + 4 + 13 + 4;

/**
 * A copy of `png` with a `tEXt` chunk (keyword, NUL, text) right after IHDR. Decoders skip
 * ancillary text chunks, so the picture is unchanged while its bytes (and sha256) are not:
 * this is how the simulator makes every frame unique without rendering a new QR.
 */
export function withTextChunk(png: Buffer, keyword: string, text: string): Buffer {
  if (png.length < AFTER_IHDR || !png.subarray(0, 8).equals(SIGNATURE) || png.toString("latin1", 12, 16) !== "IHDR") {
    throw new Error("withTextChunk: not a PNG that starts with IHDR");
  }
  if (!/^[\x20-\x7e]{1,79}$/.test(keyword) || keyword.startsWith(" ") || keyword.endsWith(" ")) {
    throw new Error("withTextChunk: the keyword must be 1-79 printable Latin-1 characters without leading or trailing spaces");
  }
  const chunk = pngChunk("tEXt", Buffer.from(`${keyword}\0${text}`, "latin1"));
  return Buffer.concat([png.subarray(0, AFTER_IHDR), chunk, png.subarray(AFTER_IHDR)]);
}
