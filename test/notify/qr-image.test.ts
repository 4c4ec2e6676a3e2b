import { PNG } from "pngjs";
import QRCode from "qrcode";
import { describe, expect, it } from "vitest";
import { enlargeQr } from "../../src/notify/qr-image.js";
import { DEFAULT_RETRY_POLICY, nextRetryDelayMs } from "../../src/notify/schedule.js";
import { decodeQr, qrContent } from "./fixtures.js";

describe("enlarging the QR for email", () => {
  it("scales small images of every common PNG colour type to a crisp, scannable size", async () => {
    const content = qrContent();
    const rgba = PNG.sync.read(await QRCode.toBuffer(content, { type: "png", scale: 1, margin: 2 }));
    for (const colorType of [0, 2, 4, 6] as const) {
      const src = PNG.sync.write(rgba, { colorType, inputColorType: 6, inputHasAlpha: true });
      const big = enlargeQr(src, 320);
      expect(big.width).toBeGreaterThanOrEqual(320);
      expect(big.width % rgba.width).toBe(0);
      expect(decodeQr(big.png)).toEqual({ content, width: big.width });
    }
  });

  it("composites a transparent background over white", async () => {
    const content = qrContent();
    const src = await QRCode.toBuffer(content, { type: "png", scale: 2, color: { dark: "#000000ff", light: "#00000000" } });
    expect(decodeQr(enlargeQr(src).png).content).toBe(content);
  });

  it("leaves large images and anything it cannot read unchanged", async () => {
    const large = await QRCode.toBuffer(qrContent(), { type: "png", scale: 10 });
    expect(enlargeQr(large).png).toBe(large);
    const junk = Buffer.from("not a png at all, not even close");
    expect(enlargeQr(junk)).toEqual({ png: junk, width: 0, height: 0 });
    const truncated = large.subarray(0, 60);
    expect(enlargeQr(truncated, 10_000).png).toBe(truncated);
    // A header that declares 12000 x 12000 pixels is refused before anything is inflated.
    const bomb = Buffer.from(large);
    bomb.writeUInt32BE(12_000, 16);
    bomb.writeUInt32BE(12_000, 20);
    expect(enlargeQr(bomb)).toEqual({ png: bomb, width: 12_000, height: 12_000 });
  });
});

describe("retry schedules", () => {
  it("follows Svix for outcomes and stays short for QR updates", () => {
    const outcome = Array.from({ length: 9 }, (_, i) => nextRetryDelayMs("session.timed_out", i + 1));
    expect(outcome).toEqual([5_000, 300_000, 1_800_000, 7_200_000, 18_000_000, 36_000_000, 36_000_000, null, null]);
    const qr = Array.from({ length: 6 }, (_, i) => nextRetryDelayMs("qr.updated", i + 1));
    expect(qr).toEqual([1000, 2000, 4000, 8000, 16_000, null]);
  });

  it("scales with the multiplier", () => {
    expect(nextRetryDelayMs("session.failed", 2, { ...DEFAULT_RETRY_POLICY, multiplier: 0.001 })).toBe(300);
  });
});
