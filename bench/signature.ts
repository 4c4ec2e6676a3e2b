import { createHmac, timingSafeEqual } from "node:crypto";

/**
 * Standard Webhooks signatures with node:crypto alone: the bare client signs with it (the
 * cheapest correct way), and the receiver checks every webhook, the daemon's and the client's,
 * with it. `v1,` + base64 HMAC-SHA256 over `${id}.${timestamp}.${body}`, keyed by the bytes
 * base64-encoded after `whsec_`.
 */

export function secretKey(whsec: string): Buffer {
  if (!whsec.startsWith("whsec_")) throw new Error("a Standard Webhooks secret starts with whsec_");
  return Buffer.from(whsec.slice("whsec_".length), "base64");
}

function mac(key: Buffer, id: string, timestamp: string, body: string | Buffer): Buffer {
  return createHmac("sha256", key).update(`${id}.${timestamp}.`).update(body).digest();
}

/** The `webhook-signature` header value. */
export function sign(key: Buffer, id: string, timestamp: string, body: string | Buffer): string {
  return `v1,${mac(key, id, timestamp, body).toString("base64")}`;
}

/** The header may list several space-separated signatures (key rotation); one matching v1 is enough. */
export function verify(key: Buffer, id: string, timestamp: string, body: string | Buffer, header: string): boolean {
  const expected = mac(key, id, timestamp, body);
  for (const part of header.split(" ")) {
    const [version, value] = part.split(",", 2);
    if (version !== "v1" || !value) continue;
    const given = Buffer.from(value, "base64");
    if (given.length === expected.length && timingSafeEqual(given, expected)) return true;
  }
  return false;
}
