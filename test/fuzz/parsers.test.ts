import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { qrTextOf } from "../../src/cli/qr-terminal.js";
import { MAX_QR_SIDE, parseFrame, type QrFrame } from "../../src/greenapi/frames.js";
import { enlargeQr } from "../../src/notify/qr-image.js";
import { pngSize, readGrey8 } from "../../src/lib/png.js";
import { expectBounded, turn, watch } from "./bounds.js";
import { bombs, goodPngs, hostileFrame, mutatedPng, runs } from "./hostile.js";

/**
 * Level 1: the pure code a provider frame goes through — the frame parser and its checks, the PNG
 * readers, the email enlargement and `qrfleet scan`'s decoder — fed thousands of hostile inputs.
 * Each must answer (a typed frame, null, the image unchanged) and never throw, stall or leak.
 * fast-check prints the seed and the shrunk counterexample of a failure; FUZZ_RUNS=10 runs ten times more.
 */

// Generous: a hostile frame may cost a few ms; a multi-second stall or a leak per run must fail.
const LIMITS = { maxDelayMs: 2_000, maxGrowthMb: 400 };

let good: Buffer[];
beforeAll(async () => {
  good = await goodPngs();
});

/** What a frame may carry on into the attempt, the database and the logs. */
function expectUsable(frame: QrFrame): void {
  switch (frame.type) {
    case "qrCode": {
      const size = pngSize(frame.png);
      expect(size).not.toBeNull();
      expect(size!.width).toBeGreaterThan(0);
      expect(size!.height).toBeGreaterThan(0);
      expect(Math.max(size!.width, size!.height)).toBeLessThanOrEqual(MAX_QR_SIDE);
      return;
    }
    case "error":
      expect(frame.message.length).toBeLessThanOrEqual(500);
      expectStorable(frame.message);
      return;
    case "accountData": {
      // Stored as jsonb: it must serialise, and hold nothing PostgreSQL refuses.
      const json = JSON.stringify(frame.raw ?? null);
      expect(typeof json).toBe("string");
      expectStorableJson(JSON.parse(json));
      if (frame.phone !== null) expect(frame.phone).toMatch(/^\d{5,20}$/);
      return;
    }
    case "unknown":
      expect(frame.wireType.length).toBeLessThanOrEqual(64);
      expectStorable(frame.wireType);
      return;
    case "protocolError":
      expect(frame.reason.length).toBeLessThan(300);
      return;
    default:
      expect(["alreadyLogged", "timeout"]).toContain(frame.type);
  }
}

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** PostgreSQL refuses NUL in text and a lone surrogate in jsonb. */
function expectStorable(text: string): void {
  expect(text).not.toContain("\u0000");
  expect(LONE_SURROGATE.test(text)).toBe(false);
}

function expectStorableJson(value: unknown): void {
  if (typeof value === "string") return expectStorable(value);
  if (typeof value !== "object" || value === null) return;
  for (const [key, item] of Object.entries(value)) {
    expectStorable(key);
    expectStorableJson(item);
  }
}

describe("fuzz, level 1: frames, PNG readers, the email enlargement and the scan decoder", () => {
  it("parseFrame answers every hostile frame with a usable typed frame and never throws", async () => {
    const w = watch();
    await fc.assert(
      fc.asyncProperty(hostileFrame(good), async (data) => {
        expectUsable(parseFrame(data));
        await turn();
      }),
      { numRuns: runs(2000) },
    );
    expectBounded(await w.stop(), LIMITS);
  }, 60_000);

  it("pngSize and readGrey8 read any bytes without throwing, and readGrey8 never returns more than the declared pixels", async () => {
    const w = watch();
    const inputs = fc.oneof(
      { weight: 10, arbitrary: mutatedPng(good) },
      { weight: 1, arbitrary: fc.constantFrom(...bombs()) },
      { weight: 2, arbitrary: fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)) },
    );
    await fc.assert(
      fc.asyncProperty(inputs, async (png) => {
        const size = pngSize(png);
        const grey = readGrey8(png);
        if (grey) {
          expect(size).toEqual({ width: grey.width, height: grey.height });
          expect(grey.grey.length).toBe(grey.width * grey.height);
        }
        await turn();
      }),
      { numRuns: runs(2000) },
    );
    expectBounded(await w.stop(), LIMITS);
  }, 60_000);

  it("the email enlargement returns a readable PNG or the image unchanged, and never an absurd one", async () => {
    const w = watch();
    await fc.assert(
      fc.asyncProperty(fc.oneof({ weight: 10, arbitrary: mutatedPng(good) }, { weight: 1, arbitrary: fc.constantFrom(...bombs()) }), fc.integer({ min: 1, max: 640 }), async (png, minWidth) => {
        const out = enlargeQr(png, minWidth);
        if (out.png !== png) {
          expect(pngSize(out.png)).toEqual({ width: out.width, height: out.height });
          expect(out.width).toBeGreaterThanOrEqual(minWidth);
          expect(out.width * out.height).toBeLessThanOrEqual(4_000_000);
        }
        await turn();
      }),
      { numRuns: runs(1000) },
    );
    expectBounded(await w.stop(), LIMITS);
  }, 60_000);

  it("qrfleet scan's decoder reads what parseFrame lets through as text or null, never a throw", async () => {
    const w = watch();
    let decoded = 0;
    await fc.assert(
      fc.asyncProperty(hostileFrame(good), async (data) => {
        const frame = parseFrame(data);
        if (frame.type === "qrCode") {
          const text = qrTextOf(frame.png);
          if (text !== null) decoded += 1;
          expect(text === null || typeof text === "string").toBe(true);
        }
        await turn();
      }),
      { numRuns: runs(600) },
    );
    // jsQR on a 2048² image is the dearest step here.
    expectBounded(await w.stop(), { ...LIMITS, maxDelayMs: LIMITS.maxDelayMs * 2 });
    expect(decoded).toBeGreaterThan(0); // the good images among the hostile ones still read
  }, 60_000);
});
