import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "../../src/log.js";
import { startSimulator, type Simulator, type Script } from "../../src/simulator/index.js";
import { decodeQr, getJson, openSession, restUrl, runSession, types, upgradeStatus, socketUrl, waitFor } from "./client.js";

let sim: Simulator;
let nextId = 7103000001;

beforeAll(async () => {
  sim = await startSimulator({
    defaults: { rotationMs: 100, scanWindowMs: 450, scanAfterMs: 250 },
    log: createLogger({ level: "silent" }),
  });
});
afterAll(() => sim.close());

/** A fresh instance per test, so no test sees another's state. */
function instance(script: Partial<Script>) {
  const def = { idInstance: String(nextId++), token: `tok${nextId}`.padEnd(50, "a"), ...script };
  sim.define(def);
  return def;
}

describe("simulator fates", () => {
  it("never: rotates distinct QR images, then `timeout` and a normal close", async () => {
    const { idInstance, token } = instance({ fate: "never" });
    const result = await runSession(sim, idInstance, token);
    const kinds = types(result);
    expect(kinds.at(-1)).toBe("timeout");
    expect(result.received.at(-1)!.frame!.message).toBe("timeout");
    const qrs = result.received.filter((r) => r.frame?.type === "qrCode").map((r) => r.frame!.message);
    expect(qrs.length).toBeGreaterThanOrEqual(3);
    expect(new Set(qrs).size).toBe(qrs.length);
    expect(kinds.slice(0, -1).every((t) => t === "qrCode")).toBe(true);
    expect(result.code).toBe(1000);
    expect(sim.currentQr(idInstance)).toBeNull();
  });

  it("scan: `accountData` with the phone's wid, then authorized; a later socket gets `alreadyLogged`", async () => {
    const { idInstance, token } = instance({ fate: "scan", phone: "79005550001" });
    const result = await runSession(sim, idInstance, token);
    expect(types(result).slice(0, 2)).toEqual(["qrCode", "qrCode"]);
    const last = result.received.at(-1)!.frame!;
    expect(last.type).toBe("accountData");
    expect(last.message).toMatchObject({ wid: "79005550001@c.us" });
    expect(result.code).toBe(1000);
    expect(sim.state(idInstance)).toBe("authorized");
    const rest = await getJson(restUrl(sim, idInstance, "getStateInstance", token));
    expect(rest).toEqual({ status: 200, body: { stateInstance: "authorized" } });
    const again = await runSession(sim, idInstance, token);
    expect(again.received.map((r) => r.frame)).toEqual([
      { type: "alreadyLogged", message: "instance account already authorized" },
    ]);
  });

  it("scan: accountData may come as JSON text", async () => {
    const { idInstance, token } = instance({ fate: "scan", scanAfterMs: 50, accountDataFormat: "json_text" });
    const result = await runSession(sim, idInstance, token);
    const message = result.received.at(-1)!.frame!.message;
    expect(typeof message).toBe("string");
    expect(JSON.parse(message as string)).toMatchObject({ wid: "79001234567@c.us" });
  });

  it("scanOnConnection: earlier connections time out, connection N is scanned", async () => {
    const { idInstance, token } = instance({ fate: "scan", scanOnConnection: 3, scanWindowMs: 200, scanAfterMs: 50 });
    expect(types(await runSession(sim, idInstance, token)).at(-1)).toBe("timeout");
    expect(types(await runSession(sim, idInstance, token)).at(-1)).toBe("timeout");
    expect(sim.state(idInstance)).toBe("notAuthorized");
    expect(types(await runSession(sim, idInstance, token)).at(-1)).toBe("accountData");
    expect(sim.connections(idInstance)).toBe(3);
    expect(sim.state(idInstance)).toBe("authorized");
  });

  it("authorized: the socket gets `alreadyLogged` and nothing else", async () => {
    const { idInstance, token } = instance({ fate: "authorized" });
    const result = await runSession(sim, idInstance, token);
    expect(result.received.map((r) => r.frame)).toEqual([
      { type: "alreadyLogged", message: "instance account already authorized" },
    ]);
  });

  it("provider_error: an `error` frame with the scripted text", async () => {
    const { idInstance, token } = instance({ fate: "provider_error", errorMessage: "instance is blocked" });
    const result = await runSession(sim, idInstance, token);
    expect(result.received.map((r) => r.frame)).toEqual([{ type: "error", message: "instance is blocked" }]);
  });

  it("wrong_token: even the right token is refused with 401", async () => {
    const { idInstance, token } = instance({ fate: "wrong_token" });
    expect(await upgradeStatus(socketUrl(sim, idInstance, token))).toBe(401);
    expect((await getJson(restUrl(sim, idInstance, "getStateInstance", token))).status).toBe(401);
  });

  it("garbage not_json: a frame that is not JSON, then rotation as usual", async () => {
    const { idInstance, token } = instance({ fate: "garbage", garbage: "not_json" });
    const result = await runSession(sim, idInstance, token);
    expect(result.received[0]!.frame).toBeUndefined();
    expect(types(result).slice(1, 3)).toEqual(["qrCode", "qrCode"]);
    expect(types(result).at(-1)).toBe("timeout");
  });

  it("garbage not_png: a qrCode whose payload is not a PNG", async () => {
    const { idInstance, token } = instance({ fate: "garbage", garbage: "not_png" });
    const result = await runSession(sim, idInstance, token);
    const first = result.received[0]!.frame!;
    expect(first.type).toBe("qrCode");
    const bytes = Buffer.from(first.message as string, "base64");
    expect(bytes.subarray(0, 4).toString("hex")).not.toBe("89504e47");
    const second = Buffer.from(result.received[1]!.frame!.message as string, "base64");
    expect(second.subarray(0, 4).toString("hex")).toBe("89504e47");
  });

  it("drop: QR frames, then the connection dies without a terminal frame", async () => {
    const { idInstance, token } = instance({ fate: "drop", dropAfterMs: 250 });
    const result = await runSession(sim, idInstance, token);
    expect(types(result).every((t) => t === "qrCode")).toBe(true);
    expect(result.received.length).toBeGreaterThanOrEqual(2);
    expect(result.code).toBe(1006);
    expect(sim.stats().drops).toBeGreaterThanOrEqual(1);
  });

  it("silence: the socket opens and stays quiet", async () => {
    const { idInstance, token } = instance({ fate: "silence" });
    const session = openSession(sim, idInstance, token);
    await session.opened;
    await new Promise((r) => setTimeout(r, 600));
    expect(session.received).toEqual([]);
    expect(session.ws.readyState).toBe(session.ws.OPEN);
    session.ws.close();
    await session.done;
    await waitFor(() => sim.openSockets() === 0);
  });

  it("unknown_type: an unknown frame first, then continues like never", async () => {
    const { idInstance, token } = instance({ fate: "unknown_type" });
    const result = await runSession(sim, idInstance, token);
    expect(result.received[0]!.frame!.type).toBe("passkeyRequired");
    expect(types(result)[1]).toBe("qrCode");
    expect(types(result).at(-1)).toBe("timeout");
  });

  it("flood: floodFrames distinct QR codes of one picture at once, then continues like never", async () => {
    const { idInstance, token } = instance({ fate: "flood", floodFrames: 500, floodBurst: 64 });
    const before = sim.stats().floodFrames;
    const result = await runSession(sim, idInstance, token);
    const qrs = result.received.filter((r) => r.frame?.type === "qrCode").map((r) => String(r.frame!.message));
    expect(qrs.length).toBeGreaterThan(500);
    expect(new Set(qrs).size).toBe(qrs.length);
    // Every flood frame is a real, readable QR: only the bytes differ (a text chunk).
    for (const k of [0, 250, 499]) expect(decodeQr(qrs[k]!)).toMatch(/^qrfleet-sim:/);
    expect(types(result).at(-1)).toBe("timeout");
    expect(sim.stats().floodFrames - before).toBe(500);
  });

  it("a phone linked while a socket is open ends it with accountData", async () => {
    const { idInstance, token } = instance({ fate: "never", scanWindowMs: 5_000 });
    const session = openSession(sim, idInstance, token);
    await waitFor(() => session.received.length > 0);
    sim.setState(idInstance, "authorized");
    const result = await session.done;
    expect(types(result).at(-1)).toBe("accountData");
  });

  it("counts a second socket opened while the first is still open", async () => {
    const { idInstance, token } = instance({ fate: "never", scanWindowMs: 300 });
    const before = sim.stats().overlappingSessions;
    await Promise.all([runSession(sim, idInstance, token), runSession(sim, idInstance, token)]);
    expect(sim.stats().overlappingSessions).toBe(before + 1);
    expect(sim.connections(idInstance)).toBe(2);
  });

  it("script() changes the fate of the next socket", async () => {
    const { idInstance, token } = instance({ fate: "provider_error" });
    sim.script(idInstance, { fate: "scan", scanAfterMs: 20 });
    expect(types(await runSession(sim, idInstance, token)).at(-1)).toBe("accountData");
    expect(() => sim.script(idInstance, { rotationMs: -1 })).toThrow(/rotationMs/);
  });
});
