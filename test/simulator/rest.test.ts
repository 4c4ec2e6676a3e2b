import { connect } from "node:net";
import { Agent, fetch as undiciFetch } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "../../src/log.js";
import { startSimulator, type Simulator, type Script } from "../../src/simulator/index.js";
import { decodeQr, getJson, openSession, restUrl, runSession, socketUrl, upgradeStatus, waitFor } from "./client.js";

let sim: Simulator;
let nextId = 7103000201;

beforeAll(async () => {
  sim = await startSimulator({
    defaults: { rotationMs: 200, scanWindowMs: 1_000, scanAfterMs: 200 },
    log: createLogger({ level: "silent" }),
  });
});
afterAll(() => sim.close());

function instance(script: Partial<Script> = {}) {
  const def = { idInstance: String(nextId++), token: `rest${nextId}`.padEnd(50, "f"), ...script };
  sim.define(def);
  return def;
}

const post = (body: string) => ({ method: "POST", headers: { "content-type": "application/json" }, body });

describe("simulator REST and upgrade addressing", () => {
  it("refuses unknown instances with 404 and wrong tokens with 401, on every route and on the upgrade", async () => {
    const { idInstance, token } = instance();
    for (const method of ["getStateInstance", "qr", "logout", "reboot"]) {
      expect((await getJson(restUrl(sim, "7999999999", method, token))).status).toBe(404);
      expect((await getJson(restUrl(sim, idInstance, method, "nope"))).status).toBe(401);
    }
    const pairing = restUrl(sim, idInstance, "getAuthorizationCode", "nope");
    expect((await getJson(pairing, post('{"phoneNumber":79001234567}'))).status).toBe(401);
    expect(await upgradeStatus(socketUrl(sim, "7999999999", token))).toBe(404);
    expect(await upgradeStatus(socketUrl(sim, idInstance, "nope"))).toBe(401);
    expect(await upgradeStatus(`${sim.url.replace("http", "ws")}/elsewhere`)).toBe(404);
    expect(await upgradeStatus(socketUrl(sim, idInstance, token))).toBe(101);
    expect(sim.stats().rejectedUpgrades).toBeGreaterThanOrEqual(3);
  });

  it("getStateInstance follows the session: authorized after a scan, notAuthorized after logout", async () => {
    const { idInstance, token } = instance({ fate: "scan", scanAfterMs: 50 });
    const state = () => getJson(restUrl(sim, idInstance, "getStateInstance", token));
    expect(await state()).toEqual({ status: 200, body: { stateInstance: "notAuthorized" } });
    await runSession(sim, idInstance, token);
    expect((await state()).body).toEqual({ stateInstance: "authorized" });
    expect(await getJson(restUrl(sim, idInstance, "logout", token))).toEqual({ status: 200, body: { isLogout: true } });
    expect((await state()).body).toEqual({ stateInstance: "notAuthorized" });
    expect(sim.state(idInstance)).toBe("notAuthorized");
  });

  it("getStateInstance answers after the script's stateLatencyMs, with the state as it is then, over kept-alive connections", async () => {
    const { idInstance, token } = instance({ fate: "authorized", stateLatencyMs: 300 });
    const started = Date.now();
    const answer = getJson(restUrl(sim, idInstance, "getStateInstance", token));
    await new Promise((r) => setTimeout(r, 50));
    sim.setState(idInstance, "yellowCard");
    expect(await answer).toEqual({ status: 200, body: { stateInstance: "yellowCard" } });
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
    const before = sim.stats();
    const agent = new Agent();
    for (let i = 0; i < 8; i += 1) {
      const res = await undiciFetch(restUrl(sim, idInstance, "getStateInstance", token), { dispatcher: agent });
      expect(await res.json()).toEqual({ stateInstance: "yellowCard" });
    }
    await agent.close();
    const after = sim.stats();
    expect(after.stateAnswers - before.stateAnswers).toBe(8);
    // A keep-alive client reuses its connections (undici opens a second one while the first is being released).
    expect(after.httpConnections - before.httpConnections).toBeLessThanOrEqual(2);
  });

  it("reboot answers isReboot", async () => {
    const { idInstance, token } = instance();
    expect(await getJson(restUrl(sim, idInstance, "reboot", token))).toEqual({ status: 200, body: { isReboot: true } });
  });

  it("qr: a snapshot consistent with the session", async () => {
    const { idInstance, token } = instance({ rotationMs: 5_000, scanWindowMs: 5_000 });
    const qr = () => getJson(restUrl(sim, idInstance, "qr", token));
    const first = (await qr()).body as { type: string; message: string };
    expect(first.type).toBe("qrCode");
    expect(decodeQr(first.message)).toBe(sim.currentQr(idInstance));
    expect(((await qr()).body as { message: string }).message).toBe(first.message);

    const session = openSession(sim, idInstance, token);
    await waitFor(() => session.received.length > 0);
    const whileOpen = (await qr()).body as { message: string };
    expect(whileOpen.message).toBe(session.received[0]!.frame!.message);
    session.ws.close();
    await session.done;

    sim.setState(idInstance, "authorized");
    expect((await qr()).body).toEqual({ type: "alreadyLogged", message: "instance account already authorized" });
    const failing = instance({ fate: "provider_error", errorMessage: "boom" });
    expect((await getJson(restUrl(sim, failing.idInstance, "qr", failing.token))).body).toEqual({ type: "error", message: "boom" });
  });

  it("qr polling of a scan instance links it after scanAfterMs", async () => {
    const { idInstance, token } = instance({ fate: "scan", scanAfterMs: 100 });
    expect(((await getJson(restUrl(sim, idInstance, "qr", token))).body as { type: string }).type).toBe("qrCode");
    await waitFor(() => sim.state(idInstance) === "authorized");
  });

  it("getAuthorizationCode returns a code and, for a scan instance, links it later", async () => {
    const { idInstance, token } = instance({ fate: "scan", scanAfterMs: 100 });
    const url = restUrl(sim, idInstance, "getAuthorizationCode", token);
    const res = await getJson(url, post('{"phoneNumber":79001112233}'));
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ status: true, code: expect.stringMatching(/^[A-Z]{4}-[A-Z]{4}$/) });
    expect(sim.state(idInstance)).toBe("notAuthorized");
    await waitFor(() => sim.state(idInstance) === "authorized");
    expect((await getJson(url, post('{"phoneNumber":"79001112233"}'))).body).toEqual({ status: false, code: "" });
  });

  it("rejects bad requests with 4xx and keeps serving", async () => {
    const { idInstance, token } = instance();
    const pairing = restUrl(sim, idInstance, "getAuthorizationCode", token);
    expect((await getJson(pairing, post("{not json"))).status).toBe(400);
    expect((await getJson(pairing, post('{"phone":1}'))).status).toBe(400);
    expect((await getJson(pairing, post('{"phoneNumber":"+7 900"}'))).status).toBe(400);
    expect((await getJson(pairing, post("x".repeat(70_000)))).status).toBe(413);
    expect((await getJson(pairing)).status).toBe(405);
    expect((await getJson(restUrl(sim, idInstance, "sendMessage", token))).status).toBe(404);
    expect((await getJson(`${sim.url}/%%%/..`)).status).toBe(404);
    await rawRequest(sim, "GARBAGE \x00\x01 HTTP/9\r\n\r\n");
    expect((await getJson(restUrl(sim, idInstance, "getStateInstance", token))).status).toBe(200);
  });
});

function rawRequest(s: Simulator, text: string): Promise<void> {
  return new Promise((resolve) => {
    const socket = connect(s.port, "127.0.0.1", () => socket.end(text));
    socket.on("data", () => undefined);
    socket.on("close", () => resolve());
    socket.on("error", () => resolve());
  });
}
