import { afterEach, describe, expect, it } from "vitest";
import { createLogger } from "../../src/log.js";
import { startSimulator, type Simulator } from "../../src/simulator/index.js";
import { decodeQr, runSession } from "./client.js";

const silent = createLogger({ level: "silent" });
let sim: Simulator | undefined;
afterEach(async () => {
  await sim?.close();
  sim = undefined;
});

const ID = "7103000101";
const TOKEN = "c".repeat(50);

describe("simulator QR images", () => {
  it("each rotation is a distinct PNG that decodes to currentQr()", async () => {
    sim = await startSimulator({
      log: silent,
      instances: [{ idInstance: ID, token: TOKEN, fate: "never", rotationMs: 150, scanWindowMs: 700 }],
    });
    const result = await runSession(sim, ID, TOKEN);
    const qrs = result.received.filter((r) => r.frame?.type === "qrCode");
    expect(qrs.length).toBeGreaterThanOrEqual(4);
    const contents = qrs.map((r) => decodeQr(r.frame!.message as string));
    qrs.forEach((r, i) => {
      expect(r.frame!.message as string).not.toMatch(/^data:/);
      expect(contents[i]).toBe(r.currentQr);
      expect(contents[i]).toMatch(new RegExp(`^qrfleet-sim:${ID}:1:${i + 1}:[0-9a-f]{8}$`));
    });
    expect(new Set(contents).size).toBe(contents.length);
    expect(sim.stats().images).toMatchObject({ mode: "unique", queued: 0 });
    expect(sim.stats().images.rendered).toBeGreaterThanOrEqual(qrs.length);
  });

  it("pool mode reuses pre-rendered images; consecutive rotations still differ", async () => {
    sim = await startSimulator({
      log: silent,
      uniqueImages: false,
      imagePoolSize: 4,
      instances: [{ idInstance: ID, token: TOKEN, fate: "never", rotationMs: 100, scanWindowMs: 750 }],
    });
    const renderedAtStart = sim.stats().images.rendered;
    expect(renderedAtStart).toBe(4);
    const result = await runSession(sim, ID, TOKEN);
    const qrs = result.received.filter((r) => r.frame?.type === "qrCode");
    expect(qrs.length).toBeGreaterThan(4);
    const contents = qrs.map((r) => decodeQr(r.frame!.message as string));
    qrs.forEach((r, i) => expect(contents[i]).toBe(r.currentQr));
    contents.slice(1).forEach((c, i) => expect(c).not.toBe(contents[i]));
    expect(new Set(contents).size).toBe(4);
    expect(contents[0]).toMatch(/^qrfleet-sim:pool:\d+:/);
    expect(sim.stats().images.rendered).toBe(renderedAtStart);
  });

  it("currentPng() is the image currently shown", async () => {
    sim = await startSimulator({
      log: silent,
      instances: [{ idInstance: ID, token: TOKEN, fate: "never", rotationMs: 10_000, scanWindowMs: 10_000 }],
    });
    expect(sim.currentPng(ID)).toBeNull();
    const res = await fetch(`${sim.url}/waInstance${ID}/qr/${TOKEN}`);
    const body = (await res.json()) as { type: string; message: string };
    expect(sim.currentPng(ID)!.toString("base64")).toBe(body.message);
    expect(decodeQr(body.message)).toBe(sim.currentQr(ID));
  });
});
