import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MAX_QR_SIDE } from "../../src/greenapi/frames.js";
import { runSocketAttempt } from "../../src/greenapi/socket-attempt.js";
import { connectorFor } from "../../src/greenapi/socket.js";
import type { AttemptOutcome, QrImage } from "../../src/greenapi/types.js";
import { pngSize } from "../../src/lib/png.js";
import { expectBounded, watch } from "./bounds.js";
import { goodPngs, runs } from "./hostile.js";
import { scriptOf, startHostileProvider, TERMINALS, type HostileProvider, type Script } from "./hostile-provider.js";

/**
 * Level 2: the real socket attempt (runSocketAttempt over ws, socket.ts) against an in-process
 * provider that sends fuzzed frame sequences — hostile frames, good QR codes, floods, waits — and
 * ends them with a terminal frame, a close, a cut connection, a frame over maxPayload or silence.
 * Fewer runs than level 1, each over a real socket.
 */

const PACE = { qrMinIntervalMs: 50, qrFloodFrames: 20 };
const BOUNDS = { silenceMs: 300, maxMs: 4_000 };
const KINDS = ["authorized", "already_logged", "timed_out", "failed"];
// Generous: a run is a few sockets' worth of work; seconds of stall or hundreds of MB are a defect.
const LIMITS = { maxDelayMs: 2_000, maxGrowthMb: 400 };

let good: Buffer[];
let provider: HostileProvider;
let nextId = 5_100_000_000;

beforeAll(async () => {
  good = await goodPngs();
  provider = await startHostileProvider(good);
});
afterAll(() => provider?.close());

/** What the ending of a script that reaches it must give (when nothing before it ended the attempt). */
function expectedOf(script: Script): Partial<AttemptOutcome> | null {
  const end = script.ending;
  if (end.kind !== "terminal") return null;
  if (end.frame === TERMINALS.authorized) return { kind: "authorized" };
  if (end.frame === TERMINALS.alreadyLogged) return { kind: "already_logged" };
  if (end.frame === TERMINALS.timeout) return { kind: "timed_out" };
  return { kind: "failed", reason: "provider_error" } as Partial<AttemptOutcome>;
}

async function attempt(script: Script, slowOnQr: boolean) {
  const idInstance = String(nextId++);
  provider.define(idInstance, script);
  const images: QrImage[] = [];
  let ended = false;
  let lateQr = 0;
  const startedAt = Date.now();
  const outcome = await runSocketAttempt({
    connect: connectorFor({ apiUrl: provider.url, idInstance, token: "fuzz-token-0123456789" }, { timeoutMs: 2_000 }),
    onQr: (qr) => {
      if (ended) lateQr += 1;
      images.push(qr);
      return slowOnQr ? new Promise((r) => setTimeout(r, 5)) : undefined;
    },
    ...BOUNDS,
    ...PACE,
  });
  ended = true;
  return { outcome, images, lateQr, elapsedMs: Date.now() - startedAt };
}

describe("fuzz, level 2: the socket attempt against a hostile provider's real websocket", () => {
  it("every fuzzed sequence ends with exactly one outcome, QR codes at the pace, and no socket left open", async () => {
    const w = watch();
    await fc.assert(
      fc.asyncProperty(scriptOf(good, { maxSteps: 12, maxBurst: 300 }), fc.boolean(), async (script, slowOnQr) => {
        const { outcome, images, lateQr, elapsedMs } = await attempt(script, slowOnQr);
        expect(KINDS).toContain(outcome.kind);
        expect(lateQr).toBe(0);
        // The pace: one QR at once, then at most one per interval (timers may fire late, never early).
        expect(images.length).toBeLessThanOrEqual(1 + Math.ceil(elapsedMs / PACE.qrMinIntervalMs));
        for (let i = 1; i < images.length; i += 1) {
          expect(images[i]!.receivedAt.getTime() - images[i - 1]!.receivedAt.getTime()).toBeGreaterThanOrEqual(PACE.qrMinIntervalMs - 1);
        }
        for (const image of images) expect(Math.max(...Object.values(pngSize(image.png)!))).toBeLessThanOrEqual(MAX_QR_SIDE);
        if (outcome.kind === "failed") expect(outcome.message).not.toContain("\u0000");
        const expected = expectedOf(script);
        // Only good QR frames and waits before the ending (and no flood): the ending decides.
        const clean = script.steps.every((s) => s.kind === "wait" || (s.kind === "frame" && s.good === true));
        if (expected && clean) expect(outcome).toMatchObject(expected);
        await waitUntil(() => provider.open() === 0, 2_000);
      }),
      { numRuns: runs(150) },
    );
    expectBounded(await w.stop(), LIMITS);
  }, 120_000);

  it("a flood of 2,000 distinct QR codes ends failed/qr_flood after one QR, with nothing left open", async () => {
    const { outcome, images } = await attempt({ steps: [{ kind: "burst", count: 2000 }], ending: { kind: "silence" } }, false);
    expect(outcome).toMatchObject({ kind: "failed", reason: "qr_flood" });
    expect(images).toHaveLength(1);
    await waitUntil(() => provider.open() === 0, 2_000);
  });
});

async function waitUntil(check: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error("the provider still has sockets open after the attempt ended");
    await new Promise((r) => setTimeout(r, 5));
  }
}
