import { createCipheriv, randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { SecretBox } from "../../src/secrets.js";

const key = () => randomBytes(32).toString("base64");

/** A value as sealed before key ids: IV ‖ tag ‖ ciphertext, with the IV chosen by the caller. */
function sealedWithoutKeyId(base64Key: string, plain: string, iv: Buffer): Uint8Array {
  const cipher = createCipheriv("aes-256-gcm", Buffer.from(base64Key, "base64"), iv);
  const body = Buffer.concat([cipher.update(plain, "utf8"), cipher.final()]);
  return Buffer.concat([iv, cipher.getAuthTag(), body]);
}

describe("the keyring", () => {
  it("seals under the current key and says so; a previous key still opens what it sealed", () => {
    const [oldKey, newKey] = [key(), key()];
    const before = new SecretBox(oldKey);
    const ring = new SecretBox(newKey, [oldKey]);
    const sealedBefore = before.seal("token-of-yesterday");
    expect(ring.unseal(sealedBefore)).toEqual({ value: "token-of-yesterday", current: false });
    expect(ring.unseal(ring.seal("token-of-today"))).toEqual({ value: "token-of-today", current: true });
    expect(() => new SecretBox(newKey).open(sealedBefore)).toThrow(/none of the configured keys/);
    expect(ring.currentKeyId).toMatch(/^[0-9a-f]{8}$/);
    expect(ring.currentKeyId).not.toBe(before.currentKeyId);
  });

  it("seals a batch with one IV per value: each opens, and the same token twice gives two ciphertexts", () => {
    const box = new SecretBox(key());
    const plains = ["token-a", "token-a", "", "ключ-токен", "x".repeat(300)];
    const sealed = box.sealAll(plains);
    expect(sealed.map((s) => box.unseal(s))).toEqual(plains.map((value) => ({ value, current: true })));
    const ivs = sealed.map((s) => Buffer.from(s.subarray(5, 17)).toString("hex"));
    expect(new Set(ivs).size).toBe(plains.length);
    expect(box.sealAll([])).toEqual([]);
  });

  it("opens a value of the format without key id even when its IV happens to start like a key id", () => {
    const k = key();
    const box = new SecretBox(k);
    const header = Buffer.from(box.seal("x")).subarray(0, 5); // version ‖ key id of this very key
    const iv = Buffer.concat([header, randomBytes(7)]);
    expect(box.unseal(sealedWithoutKeyId(k, "an old token", iv))).toEqual({ value: "an old token", current: false });
  });

  it("refuses a value whose key id or ciphertext was altered", () => {
    const [a, b] = [key(), key()];
    const ring = new SecretBox(a, [b]);
    const sealed = Buffer.from(ring.seal("secret"));
    const relabelled = Buffer.from(sealed);
    relabelled.set(Buffer.from(new SecretBox(b).seal("y")).subarray(1, 5), 1); // claims the other key
    expect(() => ring.open(relabelled)).toThrow();
    const flipped = Buffer.from(sealed);
    flipped[flipped.length - 1]! ^= 1;
    expect(() => ring.open(flipped)).toThrow();
  });
});
