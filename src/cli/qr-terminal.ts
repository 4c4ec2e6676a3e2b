import jsqr from "jsqr";
import { PNG } from "pngjs";
import QRCode from "qrcode";

/**
 * The provider sends the QR as a PNG; a terminal cannot show one. Decoding it to its text and
 * re-rendering that text as a QR of half-block characters gives a code a phone scans from the
 * screen, as sharp as the font.
 */

// jsqr is CommonJS with an ESM-style `default` in its typings; under NodeNext the callable is here.
const jsQR = jsqr.default;

/** The text a QR PNG encodes, or null when the image is not a readable QR. */
export function qrTextOf(png: Buffer): string | null {
  try {
    const image = PNG.sync.read(png);
    return qrTextOfPixels(image.data, image.width, image.height);
  } catch {
    return null;
  }
}

/** The text of a QR in RGBA pixels (a decoded PNG, a screenshot), or null. */
export function qrTextOfPixels(rgba: Uint8Array | Uint8ClampedArray, width: number, height: number): string | null {
  const pixels = new Uint8ClampedArray(rgba.buffer, rgba.byteOffset, rgba.length);
  return jsQR(pixels, width, height)?.data ?? null;
}

/** Two QR rows per text line (▀ ▄ █), with the quiet zone a scanner needs. */
export function terminalQr(text: string): Promise<string> {
  return QRCode.toString(text, { type: "terminal", small: true });
}
