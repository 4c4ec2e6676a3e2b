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

export function enlargeQr(png: Buffer, minWidth = 320): QrPicture {
  let source: PNG;
  try {
    source = PNG.sync.read(png);
  } catch {
    return { png, width: 0, height: 0 };
  }
  const { width, height } = source;
  if (width >= minWidth) return { png, width, height };
  const factor = Math.ceil(minWidth / width);
  if (width * factor * height * factor > MAX_PIXELS) return { png, width, height };
  onWhite(source.data);
  const out = new PNG({ width: width * factor, height: height * factor });
  for (let y = 0; y < out.height; y += 1) {
    const row = Math.floor(y / factor) * width;
    for (let x = 0; x < out.width; x += 1) {
      const from = (row + Math.floor(x / factor)) * 4;
      source.data.copy(out.data, (y * out.width + x) * 4, from, from + 4);
    }
  }
  return { png: PNG.sync.write(out), width: out.width, height: out.height };
}

/** A transparent QR background shows as black in some mail clients: composite it over white. */
function onWhite(rgba: Buffer): void {
  for (let i = 0; i < rgba.length; i += 4) {
    const alpha = rgba[i + 3]! / 255;
    for (let c = 0; c < 3; c += 1) rgba[i + c] = Math.round(rgba[i + c]! * alpha + 255 * (1 - alpha));
    rgba[i + 3] = 255;
  }
}
