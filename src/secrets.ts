import { createCipheriv, createDecipheriv, createHash, createHmac, createSecretKey, randomBytes, timingSafeEqual, type KeyObject } from "node:crypto";

/**
 * AES-256-GCM at rest, under a keyring: the current key seals, every key of the ring opens.
 *
 * A value sealed now is version 1: 0x01 ‖ key id (4 bytes) ‖ 12-byte IV ‖ 16-byte tag ‖
 * ciphertext, where the version and key id are authenticated as associated data. The key id lets
 * `qrfleet rotate-key` tell which values are still under an old key without a column of its own.
 * A value sealed before key ids existed is IV ‖ tag ‖ ciphertext (version 0); it still opens.
 */
const VERSION_KEYED = 1;
const KEY_ID_BYTES = 4;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const HEADER_BYTES = 1 + KEY_ID_BYTES;

/** Which key opened a value, so a caller can tell whether it needs sealing again. */
export interface Unsealed {
  value: string;
  /** Sealed with the current key in the current format: nothing to re-encrypt. */
  current: boolean;
}

class RingKey {
  readonly id: Buffer;
  /** The key imported once: a cipher made from raw bytes imports them again on every value. */
  readonly cipherKey: KeyObject;

  constructor(readonly key: Buffer) {
    // A PRF of the key, not the key: naming it reveals nothing about it.
    this.id = createHmac("sha256", key).update("qrfleet key id").digest().subarray(0, KEY_ID_BYTES);
    this.cipherKey = createSecretKey(key);
  }
}

function parseKey(base64Key: string): Buffer {
  const key = Buffer.from(base64Key, "base64");
  if (key.length !== 32) throw new Error("the secret key must be 32 bytes in base64");
  return key;
}

export class SecretBox {
  readonly #current: RingKey;
  /** The current key first, then the previous ones in the order configured. */
  readonly #ring: readonly RingKey[];

  constructor(base64Key: string, previousBase64Keys: readonly string[] = []) {
    this.#current = new RingKey(parseKey(base64Key));
    this.#ring = [this.#current, ...previousBase64Keys.map((k) => new RingKey(parseKey(k)))];
  }

  /** The current key's id in hex: safe to print, it says which key a value was sealed with. */
  get currentKeyId(): string {
    return this.#current.id.toString("hex");
  }

  seal(plain: string): Uint8Array<ArrayBuffer> {
    return this.#sealWith(plain, randomBytes(IV_BYTES));
  }

  /**
   * Many values at once, as an import of a whole fleet seals them: the IVs come from one draw of
   * randomness, which costs as much per call as the encryption of a token itself.
   */
  sealAll(plains: readonly string[]): Array<Uint8Array<ArrayBuffer>> {
    const ivs = randomBytes(IV_BYTES * plains.length);
    return plains.map((plain, i) => this.#sealWith(plain, ivs.subarray(i * IV_BYTES, (i + 1) * IV_BYTES)));
  }

  #sealWith(plain: string, iv: Buffer): Uint8Array<ArrayBuffer> {
    const header = Buffer.from([VERSION_KEYED, ...this.#current.id]);
    const cipher = createCipheriv("aes-256-gcm", this.#current.cipherKey, iv);
    cipher.setAAD(header);
    const body = cipher.update(plain, "utf8");
    const last = cipher.final();
    const out = new Uint8Array(HEADER_BYTES + IV_BYTES + TAG_BYTES + body.length + last.length);
    out.set(header, 0);
    out.set(iv, HEADER_BYTES);
    out.set(cipher.getAuthTag(), HEADER_BYTES + IV_BYTES);
    out.set(body, HEADER_BYTES + IV_BYTES + TAG_BYTES);
    out.set(last, HEADER_BYTES + IV_BYTES + TAG_BYTES + body.length);
    return out;
  }

  open(sealed: Uint8Array): string {
    return this.unseal(sealed).value;
  }

  /** Opens a value with whichever key of the ring sealed it; throws when none does. */
  unseal(sealed: Uint8Array): Unsealed {
    const buf = Buffer.from(sealed);
    if (buf.length < IV_BYTES + TAG_BYTES) throw new Error("sealed value is truncated");
    // A version-0 value starts with a random IV, so a matching first byte and key id can be chance:
    // the GCM tag decides, and a failed keyed reading falls through to the version-0 one.
    const keyed = this.#openKeyed(buf);
    if (keyed !== null) return keyed;
    for (const ring of this.#ring) {
      const value = tryDecrypt(ring.key, buf, null);
      if (value !== null) return { value, current: false };
    }
    throw new Error("sealed value opens under none of the configured keys");
  }

  #openKeyed(buf: Buffer): Unsealed | null {
    if (buf[0] !== VERSION_KEYED || buf.length < HEADER_BYTES + IV_BYTES + TAG_BYTES) return null;
    const id = buf.subarray(1, HEADER_BYTES);
    const ring = this.#ring.find((r) => r.id.equals(id));
    if (!ring) return null;
    const value = tryDecrypt(ring.key, buf.subarray(HEADER_BYTES), buf.subarray(0, HEADER_BYTES));
    return value === null ? null : { value, current: ring === this.#current };
  }

  /** The current raw key, for HMAC signing of live links (never logged). */
  hmacKey(): Buffer {
    return this.#current.key;
  }

  /** Every key of the ring, current first: a live link signed under a previous key still verifies. */
  hmacKeys(): readonly Buffer[] {
    return this.#ring.map((r) => r.key);
  }
}

/** IV ‖ tag ‖ ciphertext under `key`, or null when the tag does not hold (another key, or tampered). */
function tryDecrypt(key: Buffer, body: Buffer, aad: Buffer | null): string | null {
  try {
    const decipher = createDecipheriv("aes-256-gcm", key, body.subarray(0, IV_BYTES));
    if (aad) decipher.setAAD(aad);
    decipher.setAuthTag(body.subarray(IV_BYTES, IV_BYTES + TAG_BYTES));
    return Buffer.concat([decipher.update(body.subarray(IV_BYTES + TAG_BYTES)), decipher.final()]).toString("utf8");
  } catch {
    return null;
  }
}

/** Constant-time equality of two secrets of any length (hashing first equalises the lengths). */
export function sameSecret(a: string, b: string): boolean {
  const digest = (s: string) => createHash("sha256").update(s, "utf8").digest();
  return timingSafeEqual(digest(a), digest(b));
}
