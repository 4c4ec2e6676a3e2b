import { PNG } from "pngjs";

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

/** Width and height from the IHDR chunk, read before anything is decoded. */
function declaredSize(png: Buffer): { width: number; height: number } | null {
  if (png.length < 24 || png.toString("latin1", 12, 16) !== "IHDR") return null;
  return { width: png.readUInt32BE(16), height: png.readUInt32BE(20) };
}

export function enlargeQr(png: Buffer, minWidth = 320): QrPicture {
  const declared = declaredSize(png);
  if (!declared || declared.width * declared.height > MAX_PIXELS) return { png, width: declared?.width ?? 0, height: declared?.height ?? 0 };
  if (declared.width >= minWidth) return { png, ...declared };
  let source: PNG;
  try {
    source = PNG.sync.read(png);
  } catch {
    return { png, width: 0, height: 0 };
  }
  const { width, height } = source;
  const factor = Math.ceil(minWidth / width);
  if (width * factor * height * factor > MAX_PIXELS) return { png, width, height };
  // Sized after construction: a PNG made with a size first allocates (and zeroes) RGBA pixels we would throw away.
  const out = Object.assign(new PNG(), { width: width * factor, height: height * factor, data: scaledGrey(source, factor) });
  // Grey with one fixed filter: a QR has two colours, and trying every filter per row (pngjs's
  // default) made this 20 times slower for no smaller a file. Sent once per attempt per inbox.
  const encoded = PNG.sync.write(out, { colorType: 0, inputColorType: 0, inputHasAlpha: false, filterType: 2 });
  return { png: encoded, width: out.width, height: out.height };
}

/**
 * One grey byte per pixel, composited over white (a transparent QR background shows as black in
 * some mail clients); each source row is scaled once and copied `factor` times.
 */
function scaledGrey(source: PNG, factor: number): Buffer {
  const { width, height, data } = source;
  const outWidth = width * factor;
  const out = Buffer.alloc(outWidth * height * factor);
  const row = Buffer.alloc(outWidth);
  for (let y = 0; y < height; y += 1) {
    let o = 0;
    for (let x = 0; x < width; x += 1) {
      const i = (y * width + x) * 4;
      const alpha = data[i + 3]! / 255;
      const grey = Math.round((0.299 * data[i]! + 0.587 * data[i + 1]! + 0.114 * data[i + 2]!) * alpha + 255 * (1 - alpha));
      for (let k = 0; k < factor; k += 1) row[o++] = grey;
    }
    for (let k = 0; k < factor; k += 1) row.copy(out, (y * factor + k) * outWidth);
  }
  return out;
}
