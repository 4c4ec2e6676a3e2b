import { beforeAll, describe, expect, it } from "vitest";
import { withTextChunk } from "../../src/simulator/png-text.js";
import type { QrImage } from "../../src/greenapi/types.js";
import { frame, qrFrame, qrPng, start, waitFor } from "./fixtures.js";

let base: Buffer;
beforeAll(async () => {
  base = await qrPng("pace-test");
});

/** The same picture with distinct bytes, as a provider's successive QR codes are. */
const distinct = (k: number) => withTextChunk(base, "pace", String(k));

describe("QR pace (qrMinIntervalMs)", () => {
  it("hands over at most one QR per interval: a burst becomes its first and its newest", async () => {
    const h = start({ qrMinIntervalMs: 150, qrFloodFrames: 1000 });
    for (let k = 0; k < 30; k += 1) h.socket.send(qrFrame(distinct(k)));
    await waitFor(() => h.images.length === 2);
    h.socket.send(frame("timeout", "timeout"));
    expect(await h.outcome).toEqual({ kind: "timed_out" });
    expect(h.images.map((i) => i.png.equals(distinct(0)) || i.png.equals(distinct(29)))).toEqual([true, true]);
    expect(h.images[1]!.png.equals(distinct(29))).toBe(true);
    expect(h.images[1]!.receivedAt.getTime() - h.images[0]!.receivedAt.getTime()).toBeGreaterThanOrEqual(149);
    expect(h.notices.filter((n) => n.kind === "qr_dropped")).toEqual([{ kind: "qr_dropped", count: 28 }]);
  });

  it("a terminal frame does not wait for a held QR: that QR is dropped and counted", async () => {
    const h = start({ qrMinIntervalMs: 60_000 });
    h.socket.send(qrFrame(distinct(1)));
    h.socket.send(qrFrame(distinct(2)));
    h.socket.send(frame("accountData", { wid: "79001234567@c.us" }));
    expect(await h.outcome).toMatchObject({ kind: "authorized", phone: "79001234567" });
    expect(h.images).toHaveLength(1);
    expect(h.notices).toContainEqual({ kind: "qr_dropped", count: 1 });
  });

  it("failed/qr_flood once QR frames outrun the pace by more than qrFloodFrames", async () => {
    const h = start({ qrMinIntervalMs: 1000, qrFloodFrames: 20 });
    for (let k = 0; k < 2000; k += 1) h.socket.send(qrFrame(distinct(k)));
    const outcome = await h.outcome;
    expect(outcome).toMatchObject({ kind: "failed", reason: "qr_flood", message: expect.stringMatching(/faster than it can rotate them/) });
    expect(h.images).toHaveLength(1);
    expect(h.socket.closedByClient).toBe(1);
  });

  it("a provider at the pace is never a flood, however low qrFloodFrames is", async () => {
    const images: QrImage[] = [];
    const h = start({ qrMinIntervalMs: 40, qrFloodFrames: 1, silenceMs: 150, onQr: (q) => void images.push(q) });
    for (let k = 0; k < 6; k += 1) {
      h.socket.send(qrFrame(distinct(k)));
      await waitFor(() => images.length === k + 1);
      await new Promise((r) => setTimeout(r, 45));
    }
    // Every frame was shown; once the provider stops, silence counts from its last frame.
    expect(await h.outcome).toEqual({ kind: "failed", reason: "silent", message: "no frame for 150 ms" });
    expect(images).toHaveLength(6);
  });

  it("silence is not declared while a QR is held for its interval", async () => {
    const h = start({ qrMinIntervalMs: 400, silenceMs: 150 });
    h.socket.send(qrFrame(distinct(1)));
    h.socket.send(qrFrame(distinct(2)));
    const outcome = await h.outcome;
    expect(outcome).toEqual({ kind: "failed", reason: "silent", message: "no frame for 150 ms" });
    // The held QR went out at its turn, before the attempt could be called silent.
    expect(h.images.map((i) => i.png.equals(distinct(2)))).toEqual([false, true]);
  });

  it("refuses an unusable pace", async () => {
    await expect(start({ qrMinIntervalMs: -1 }).outcome).rejects.toThrow(/qrMinIntervalMs/);
    await expect(start({ qrMinIntervalMs: 10, qrFloodFrames: 0 }).outcome).rejects.toThrow(/qrFloodFrames/);
  });
});
