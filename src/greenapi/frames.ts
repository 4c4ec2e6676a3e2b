import { pngSize } from "../lib/png.js";
import { messageText, storableJson, storableText } from "./wire-text.js";

/**
 * One provider frame `{ "type": string, "message": ... }` → a typed value. Never throws:
 * anything unusable becomes `protocolError`, any type we do not know becomes `unknown`.
 * The REST `qr` call answers the same shape and goes through here too.
 */

/** Larger text frames are refused (the socket's maxPayload uses the same bound). */
export const MAX_FRAME_BYTES = 1024 * 1024;

export type QrFrame =
  | { type: "qrCode"; png: Buffer }
  | { type: "error"; message: string }
  /** raw: the provider's `message` as received (string, JSON text or object), made storable (see wire-text.ts). */
  | { type: "accountData"; raw: unknown; phone: string | null }
  | { type: "alreadyLogged" }
  /** wireType: "timeout" or "timeoutExpired"; both mean the scan window passed. */
  | { type: "timeout"; wireType: string }
  | { type: "unknown"; wireType: string }
  | { type: "protocolError"; reason: string };

// signature + IHDR chunk + empty IDAT + IEND: nothing smaller is a PNG.
const MIN_PNG_BYTES = 8 + 25 + 12 + 12;
const DATA_URL_PREFIX = /^data:image\/png;base64,/i;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;
const WID = /(\d{5,20})@(?:c\.us|s\.whatsapp\.net)/;
const MAX_TEXT = 500;
const MAX_ACCOUNT_TEXT = 10_000;
/** Widest QR image accepted from the provider, in pixels (GREEN-API's are a few hundred). */
export const MAX_QR_SIDE = 2048;

export function parseFrame(data: string | Uint8Array): QrFrame {
  if (typeof data !== "string") return protocolError(`binary frame of ${data.byteLength} bytes`);
  if (data.length > MAX_FRAME_BYTES) return protocolError(`frame of ${data.length} characters exceeds ${MAX_FRAME_BYTES}`);
  let value: unknown;
  try {
    value = JSON.parse(data);
  } catch {
    return protocolError(`frame is not JSON (${data.length} characters)`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return protocolError("frame is not a JSON object");
  }
  const { type, message } = value as { type?: unknown; message?: unknown };
  if (typeof type !== "string" || type === "") return protocolError("frame has no string `type`");
  switch (type) {
    case "qrCode":
      return qrCodeFrame(message);
    case "error":
      return { type: "error", message: messageText(message, MAX_TEXT) };
    case "accountData":
      return { type: "accountData", raw: storableAccountData(message), phone: phoneOf(message) };
    case "alreadyLogged":
      return { type: "alreadyLogged" };
    case "timeout":
    case "timeoutExpired":
      return { type: "timeout", wireType: type };
    default:
      return { type: "unknown", wireType: storableText(type, 64) };
  }
}

function protocolError(reason: string): QrFrame {
  return { type: "protocolError", reason };
}

function qrCodeFrame(message: unknown): QrFrame {
  const png = decodePng(message);
  return typeof png === "string" ? protocolError(png) : { type: "qrCode", png };
}

/** Base64 (optionally a data: URL) → PNG bytes, or a reason why it is not one. */
export function decodePng(message: unknown): Buffer | string {
  if (typeof message !== "string") return "qrCode message is not a string";
  let b64 = message.replace(DATA_URL_PREFIX, "");
  // Some encoders wrap base64 at 76 columns; whitespace is not part of the data.
  if (/\s/.test(b64)) b64 = b64.replace(/\s+/g, "");
  if (!BASE64.test(b64)) return "qrCode message is not base64";
  const png = Buffer.from(b64, "base64");
  const size = png.length >= MIN_PNG_BYTES ? pngSize(png) : null;
  if (!size) return "qrCode message is not a PNG";
  const { width, height } = size;
  // A QR code is a few hundred pixels wide; a few kilobytes of deflate can declare gigabytes.
  if (width === 0 || height === 0 || width > MAX_QR_SIDE || height > MAX_QR_SIDE) {
    return `qrCode image declares ${width}×${height} pixels (at most ${MAX_QR_SIDE}×${MAX_QR_SIDE})`;
  }
  return png;
}

/** Account data is stored as jsonb: a copy PostgreSQL accepts, or its text when it is too large or deep for one. */
function storableAccountData(message: unknown): unknown {
  if (message === undefined) return undefined;
  if (typeof message === "string") return storableText(message, MAX_ACCOUNT_TEXT);
  const copy = storableJson(message);
  return copy.ok ? copy.value : messageText(message, MAX_TEXT);
}

/**
 * The account's phone number from accountData, whose format is undocumented: prefer an
 * object's `wid`, else any "<digits>@c.us" in the text (plain or JSON).
 */
export function phoneOf(message: unknown): string | null {
  if (typeof message === "string") {
    const trimmed = message.trimStart();
    if (trimmed.startsWith("{")) {
      try {
        const parsed: unknown = JSON.parse(trimmed);
        if (typeof parsed === "object" && parsed !== null) return phoneOf(parsed);
      } catch {
        // not JSON after all: search the text
      }
    }
    return WID.exec(message)?.[1] ?? null;
  }
  if (typeof message !== "object" || message === null) return null;
  const wid = (message as { wid?: unknown }).wid;
  if (typeof wid === "string") {
    const match = WID.exec(wid);
    if (match) return match[1] ?? null;
  }
  const all = safeStringify(message);
  return all === undefined ? null : (WID.exec(all)?.[1] ?? null);
}

function safeStringify(value: unknown): string | undefined {
  try {
    return JSON.stringify(value);
  } catch {
    return undefined;
  }
}
