import { createHmac, timingSafeEqual } from "node:crypto";
import { isUuid } from "../lib/uuid.js";

/**
 * Live-page links carry a token that names the instance and when the link stops working,
 * signed with HMAC-SHA256. Layout before base64url: version ‖ expiry (u32 seconds) ‖ instance
 * id ‖ MAC (first 16 bytes). Version 1 packs a UUID into 16 bytes; version 2 carries any id as UTF-8.
 */

export type LiveTokenCheck =
  | { ok: true; instanceId: string; expiresAt: Date }
  | { ok: false; reason: "tampered" | "expired" | "malformed" };

const V_UUID = 1;
const V_TEXT = 2;
const HEADER_BYTES = 5;
// 128 bits of a truncated HMAC-SHA256 is ample for a link that expires; it keeps URLs short.
const MAC_BYTES = 16;
const MAX_ID_BYTES = 200;

/** The master key also encrypts secrets at rest; links are signed with a key derived for this one use. */
const linkKeys = new WeakMap<Buffer, Buffer>();
function linkKey(key: Buffer): Buffer {
  let derived = linkKeys.get(key);
  if (!derived) {
    derived = createHmac("sha256", key).update("qrfleet live-link v1").digest();
    linkKeys.set(key, derived);
  }
  return derived;
}

function mac(key: Buffer, payload: Buffer): Buffer {
  return createHmac("sha256", linkKey(key)).update(payload).digest().subarray(0, MAC_BYTES);
}

function encodeId(instanceId: string): { version: number; bytes: Buffer } {
  if (isUuid(instanceId)) return { version: V_UUID, bytes: Buffer.from(instanceId.replace(/-/g, "").toLowerCase(), "hex") };
  const bytes = Buffer.from(instanceId, "utf8");
  if (bytes.length === 0 || bytes.length > MAX_ID_BYTES) throw new RangeError("instance id must be 1 to 200 bytes");
  return { version: V_TEXT, bytes };
}

function decodeId(version: number, bytes: Buffer): string | null {
  if (version === V_UUID) {
    if (bytes.length !== 16) return null;
    const h = bytes.toString("hex");
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  }
  if (version === V_TEXT && bytes.length > 0 && bytes.length <= MAX_ID_BYTES) return bytes.toString("utf8");
  return null;
}

export function signLiveToken(key: Buffer, instanceId: string, expiresAt: Date): string {
  const { version, bytes } = encodeId(instanceId);
  const header = Buffer.alloc(HEADER_BYTES);
  header.writeUInt8(version, 0);
  header.writeUInt32BE(Math.max(0, Math.min(0xffffffff, Math.floor(expiresAt.getTime() / 1000))), 1);
  const payload = Buffer.concat([header, bytes]);
  return Buffer.concat([payload, mac(key, payload)]).toString("base64url");
}

/** A link's expiry may run ahead of the lifetime by this much: the clocks of the daemon that signed it and the one that reads it. */
const CLOCK_SLACK_MS = 5 * 60_000;

/**
 * `keys` is one key or the keyring, current first: a link signed before a key rotation keeps
 * working until it expires, for as long as its key is still listed as previous. A link whose
 * expiry lies further ahead than `lifetimeMs` was not signed by this fleet as configured: refused.
 */
export function verifyLiveToken(keys: Buffer | readonly Buffer[], token: string, now: Date = new Date(), lifetimeMs = Infinity): LiveTokenCheck {
  if (!/^[A-Za-z0-9_-]{1,400}$/.test(token)) return { ok: false, reason: "malformed" };
  const raw = Buffer.from(token, "base64url");
  if (raw.length <= HEADER_BYTES + MAC_BYTES || raw.toString("base64url") !== token) return { ok: false, reason: "malformed" };
  const payload = raw.subarray(0, raw.length - MAC_BYTES);
  const instanceId = decodeId(payload.readUInt8(0), payload.subarray(HEADER_BYTES));
  if (instanceId === null) return { ok: false, reason: "malformed" };
  const presented = raw.subarray(raw.length - MAC_BYTES);
  const ring = Buffer.isBuffer(keys) ? [keys] : keys;
  if (!ring.some((key) => timingSafeEqual(presented, mac(key, payload)))) return { ok: false, reason: "tampered" };
  const expiresAt = new Date(payload.readUInt32BE(1) * 1000);
  if (now.getTime() >= expiresAt.getTime()) return { ok: false, reason: "expired" };
  if (expiresAt.getTime() - now.getTime() > lifetimeMs + CLOCK_SLACK_MS) return { ok: false, reason: "tampered" };
  return { ok: true, instanceId, expiresAt };
}

export function liveUrl(publicUrl: string, token: string): string {
  return `${publicUrl.replace(/\/+$/, "")}/live/${token}`;
}
