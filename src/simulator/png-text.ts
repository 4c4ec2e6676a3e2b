import { crc32 } from "./crc32.js";

const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
/** Signature (8) + IHDR chunk: length (4), type (4), 13 bytes of data, CRC (4). */
const AFTER_IHDR = 8 + 4 + 4 + 13 + 4;
const TEXT_TYPE = Buffer.from("tEXt", "latin1");

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
  const data = Buffer.from(`${keyword}\0${text}`, "latin1");
  const chunk = Buffer.allocUnsafe(12 + data.length);
  chunk.writeUInt32BE(data.length, 0);
  TEXT_TYPE.copy(chunk, 4);
  data.copy(chunk, 8);
  // The CRC covers the chunk type and data, not the length.
  chunk.writeUInt32BE(crc32(chunk.subarray(4, 8 + data.length)), 8 + data.length);
  return Buffer.concat([png.subarray(0, AFTER_IHDR), chunk, png.subarray(AFTER_IHDR)]);
}
