import { randomBytes, randomUUID } from "node:crypto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { liveUrl, signLiveToken, verifyLiveToken } from "../../src/notify/live-link.js";

const key = randomBytes(32);
const inAnHour = () => new Date(Date.now() + 3600_000);

describe("live-page link tokens", () => {
  it("round-trips the instance id and the expiry (to the second)", () => {
    const id = randomUUID();
    const expiresAt = new Date("2030-01-02T03:04:05.678Z");
    const token = signLiveToken(key, id, expiresAt);
    expect(token).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(token.length).toBeLessThanOrEqual(60);
    expect(verifyLiveToken(key, token, new Date("2030-01-01T00:00:00Z"))).toEqual({
      ok: true,
      instanceId: id,
      expiresAt: new Date("2030-01-02T03:04:05.000Z"),
    });
  });

  it("refuses a link whose expiry lies further ahead than the configured lifetime, with a few minutes for clocks", () => {
    const day = 86_400_000;
    const now = new Date("2030-01-01T00:00:00Z");
    const at = (ms: number) => signLiveToken(key, randomUUID(), new Date(now.getTime() + ms));
    expect(verifyLiveToken(key, at(day), now, day).ok).toBe(true);
    expect(verifyLiveToken(key, at(day + 60_000), now, day).ok).toBe(true);
    expect(verifyLiveToken(key, at(day + 3600_000), now, day)).toEqual({ ok: false, reason: "tampered" });
    expect(verifyLiveToken(key, at(3650 * day), now, day)).toEqual({ ok: false, reason: "tampered" });
  });

  it("carries ids that are not UUIDs", () => {
    const token = signLiveToken(key, "instance-ünïcode-7", inAnHour());
    expect(verifyLiveToken(key, token)).toMatchObject({ ok: true, instanceId: "instance-ünïcode-7" });
  });

  it("says tampered when any character of a token is changed, or the key differs", () => {
    const token = signLiveToken(key, randomUUID(), inAnHour());
    const flipped = (i: number) => token.slice(0, i) + (token[i] === "A" ? "B" : "A") + token.slice(i + 1);
    expect(verifyLiveToken(key, flipped(10))).toEqual({ ok: false, reason: "tampered" });
    expect(verifyLiveToken(key, flipped(token.length - 3))).toEqual({ ok: false, reason: "tampered" });
    expect(verifyLiveToken(randomBytes(32), token)).toEqual({ ok: false, reason: "tampered" });
    fc.assert(
      fc.property(fc.nat({ max: token.length - 1 }), fc.constantFrom(..."ABCxyz019-_"), (i, c) => {
        fc.pre(token[i] !== c);
        expect(verifyLiveToken(key, token.slice(0, i) + c + token.slice(i + 1)).ok).toBe(false);
      }),
    );
  });

  it("says expired once the expiry has passed, even with a valid signature", () => {
    const past = new Date(Date.now() - 1000);
    expect(verifyLiveToken(key, signLiveToken(key, randomUUID(), past))).toEqual({ ok: false, reason: "expired" });
    const exp = new Date("2030-01-01T00:00:00Z");
    const token = signLiveToken(key, randomUUID(), exp);
    expect(verifyLiveToken(key, token, new Date(exp.getTime() - 1000)).ok).toBe(true);
    expect(verifyLiveToken(key, token, exp)).toEqual({ ok: false, reason: "expired" });
  });

  it("says malformed for garbage, truncation and foreign characters", () => {
    const token = signLiveToken(key, randomUUID(), inAnHour());
    for (const bad of ["", "abc", "not a token!", token.slice(0, 12), `${token}/x`, "A".repeat(500), token + "="]) {
      expect(verifyLiveToken(key, bad)).toEqual({ ok: false, reason: "malformed" });
    }
  });

  it("never accepts random input (fuzz)", () => {
    fc.assert(fc.property(fc.string({ maxLength: 120 }), (s) => verifyLiveToken(key, s).ok === false));
  });

  it("builds the live URL under the public URL", () => {
    expect(liveUrl("https://qr.example.com/", "tok")).toBe("https://qr.example.com/live/tok");
    expect(liveUrl("https://qr.example.com/base", "tok")).toBe("https://qr.example.com/base/live/tok");
  });
});
