import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { importInstances } from "../../src/fleet/instances/import.js";
import { addInstance, showInstance, updateInstance } from "../../src/fleet/instances/instances.js";
import { enqueueSession, showSession } from "../../src/fleet/sessions/sessions.js";
import { startSimulator, type Simulator } from "../../src/simulator/index.js";
import type { Daemon } from "../../workers/daemon.js";
import { cliRunner } from "../cli/run.js";
import { newIdInstance, newPrefix, newToken, simulatedInstance, startTestDaemon, waitFor } from "../support/fleet.js";

const API = "https://7103.api.greenapi.com";
const qrfleet = cliRunner();

let sim: Simulator;
let daemon: Daemon;

beforeAll(async () => {
  sim = await startSimulator({ defaults: { rotationMs: 200, scanWindowMs: 900 } });
  daemon = await startTestDaemon({ QRFLEET_REDIS_PREFIX: newPrefix(), QRFLEET_SCAN_WINDOW_MS: "1500" });
});

afterAll(async () => {
  await daemon?.close();
  await sim?.close();
});

describe("an instance with qrTransport rest", () => {
  it("is linked by polling the REST qr call: the session ends authorized with its QR codes stored", async () => {
    const inst = await simulatedInstance(daemon.ctx, sim, { fate: "scan", scanAfterMs: 600 }, { qrTransport: "rest" });
    expect(inst.qrTransport).toBe("rest");
    const { session } = await enqueueSession(daemon.ctx, inst.id, "admin");
    const done = await waitFor("the session to end", async () => {
      const s = await showSession(daemon.ctx, session.id);
      return s.status === "queued" || s.status === "running" ? null : s;
    }, 8000);
    expect(done).toMatchObject({ status: "authorized", phone: null });
    expect(sim.connections(inst.idInstance)).toBe(0); // no websocket was opened
    const codes = await daemon.ctx.db.qrCode.findMany({ where: { sessionId: session.id }, orderBy: { sequence: "asc" } });
    expect(codes.length).toBeGreaterThanOrEqual(1);
    expect(new Set(codes.map((c) => c.sha256)).size).toBe(codes.length);
    expect((await daemon.ctx.db.qrSession.findUniqueOrThrow({ where: { id: session.id } })).qrCount).toBe(codes.length);
    // the scan is confirmed with getStateInstance, as over the websocket
    await waitFor("the state to be recorded", async () => (await showInstance(daemon.ctx, inst.id)).lastState === "authorized", 5000);
  });

  it("is accepted by add, update and CSV import; anything but websocket or rest is refused", async () => {
    const plain = await addInstance(daemon.ctx, { apiUrl: API, idInstance: newIdInstance(), token: newToken() });
    expect(plain.qrTransport).toBe("websocket");
    expect((await updateInstance(daemon.ctx, plain.id, { qrTransport: "rest" })).qrTransport).toBe("rest");
    await expect(updateInstance(daemon.ctx, plain.id, { qrTransport: "polling" })).rejects.toThrow(
      "qrTransport: must be one of websocket, rest",
    );

    const [a, b] = [newIdInstance(), newIdInstance()];
    const csv = ["apiUrl,idInstance,token,qrTransport", `${API},${a},${newToken()},rest`, `${API},${b},${newToken()},`].join("\n");
    expect((await importInstances(daemon.ctx, csv)).created).toBe(2);
    expect((await showInstance(daemon.ctx, a)).qrTransport).toBe("rest");
    expect((await showInstance(daemon.ctx, b)).qrTransport).toBe("websocket");
  });

  it("is set and shown by the CLI with --qr-transport", async () => {
    const id = newIdInstance();
    const added = await qrfleet.json<{ qrTransport: string }>(["instance", "add", "--api-url", API, "--id", id, "--token", newToken(), "--qr-transport", "rest"]);
    expect(added.qrTransport).toBe("rest");
    expect((await qrfleet(["instance", "show", id])).stdout).toMatch(/qr transport:\s+rest/);
    expect((await qrfleet.json<{ qrTransport: string }>(["instance", "update", id, "--qr-transport", "websocket"])).qrTransport).toBe("websocket");
    const bad = await qrfleet(["instance", "update", id, "--qr-transport", "carrier-pigeon"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("Allowed choices are websocket, rest");
  }, 30_000);
});
