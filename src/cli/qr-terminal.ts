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
    const pixels = new Uint8ClampedArray(image.data.buffer, image.data.byteOffset, image.data.length);
    return jsQR(pixels, image.width, image.height)?.data ?? null;
  } catch {
    return null;
  }
}

/** Two QR rows per text line (▀ ▄ █), with the quiet zone a scanner needs. */
export function terminalQr(text: string): Promise<string> {
  return QRCode.toString(text, { type: "terminal", small: true });
}
