import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createLogger } from "../../src/log.js";
import { startSimulator, type Simulator } from "../../src/simulator/index.js";
import { getJson, restUrl, runSession, waitFor } from "./client.js";

interface Delivery {
  url: string;
  headers: IncomingHttpHeaders;
  body: Record<string, unknown>;
}

let receiver: Server;
let receiverUrl: string;
let deliveries: Delivery[];
let sim: Simulator | undefined;

beforeEach(async () => {
  deliveries = [];
  receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      deliveries.push({ url: req.url ?? "", headers: req.headers, body: JSON.parse(Buffer.concat(chunks).toString()) as Record<string, unknown> });
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((r) => receiver.listen(0, "127.0.0.1", r));
  receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hooks/green-api`;
});
afterEach(async () => {
  await sim?.close();
  sim = undefined;
  receiver.closeAllConnections();
  await new Promise((r) => receiver.close(r));
});

const ID = "7103000301";
const TOKEN = "d".repeat(50);
const silent = createLogger({ level: "silent" });

describe("simulator provider webhooks", () => {
  it("POSTs stateInstanceChanged with the instance's Authorization token on scan and logout", async () => {
    sim = await startSimulator({
      log: silent,
      webhookUrl: receiverUrl,
      instances: [{ idInstance: ID, token: TOKEN, fate: "scan", scanAfterMs: 50, phone: "79007654321", webhookToken: "hook-secret-1" }],
    });
    await runSession(sim, ID, TOKEN);
    await waitFor(() => deliveries.length === 1);
    const [scanned] = deliveries;
    expect(scanned!.headers.authorization).toBe("Bearer hook-secret-1");
    expect(scanned!.headers["content-type"]).toBe("application/json");
    expect(scanned!.body).toEqual({
      typeWebhook: "stateInstanceChanged",
      instanceData: { idInstance: 7103000301, wid: "79007654321@c.us", typeInstance: "whatsapp" },
      timestamp: expect.any(Number),
      stateInstance: "authorized",
    });
    expect(Math.abs((scanned!.body.timestamp as number) - Date.now() / 1000)).toBeLessThan(5);

    await getJson(restUrl(sim, ID, "logout", TOKEN));
    await waitFor(() => deliveries.length === 2);
    expect(deliveries[1]!.body).toMatchObject({ stateInstance: "notAuthorized", instanceData: { wid: "79007654321@c.us" } });
    await waitFor(() => sim!.stats().webhooksSent === 2);
  });

  it("setState() sends one webhook per change and none without a token header when no token is set", async () => {
    sim = await startSimulator({ log: silent, webhookUrl: receiverUrl, instances: [{ idInstance: ID, token: TOKEN }] });
    sim.setState(ID, "notAuthorized");
    sim.setState(ID, "yellowCard");
    sim.setState(ID, "yellowCard");
    await waitFor(() => deliveries.length === 1);
    await new Promise((r) => setTimeout(r, 100));
    expect(deliveries).toHaveLength(1);
    expect(deliveries[0]!.headers.authorization).toBeUndefined();
    expect(deliveries[0]!.body.stateInstance).toBe("yellowCard");
    expect(() => sim!.setState(ID, "sleeping" as never)).toThrow(/unknown state/);
  });

  it("sends every step of a state timeline as it plays", async () => {
    sim = await startSimulator({
      log: silent,
      webhookUrl: receiverUrl,
      instances: [{ idInstance: ID, token: TOKEN, states: [{ state: "starting", forMs: 100 }, { state: "sleepMode", forMs: 100 }, { state: "authorized" }] }],
    });
    await waitFor(() => deliveries.length === 3);
    expect(deliveries.map((d) => d.body.stateInstance)).toEqual(["starting", "sleepMode", "authorized"]);
  });

  it("webhookTargets() sends each webhook to the next target in turn, and none once the list is empty", async () => {
    sim = await startSimulator({ log: silent, instances: [{ idInstance: ID, token: TOKEN, webhookToken: "hook-secret-2" }] });
    sim.setState(ID, "yellowCard");
    const base = receiverUrl.replace(/\/hooks\/green-api$/, "");
    sim.webhookTargets([`${base}/daemon-1`, `${base}/daemon-2`]);
    for (const state of ["notAuthorized", "blocked", "starting", "authorized"] as const) sim.setState(ID, state);
    await waitFor(() => deliveries.length === 4);
    expect(deliveries.filter((d) => d.url === "/daemon-1")).toHaveLength(2);
    expect(deliveries.filter((d) => d.url === "/daemon-2")).toHaveLength(2);
    expect(deliveries.every((d) => d.headers.authorization === "Bearer hook-secret-2")).toBe(true);
    sim.webhookTargets([]);
    sim.setState(ID, "notAuthorized");
    await new Promise((r) => setTimeout(r, 100));
    expect(deliveries).toHaveLength(4);
    expect(() => sim!.webhookTargets(["ftp://elsewhere/hooks"])).toThrow(/must be an http\(s\) URL/);
  });

  it("a receiver that is down is logged and ignored", async () => {
    receiver.closeAllConnections();
    await new Promise((r) => receiver.close(r));
    receiver = createServer();
    receiver.listen(0, "127.0.0.1");
    sim = await startSimulator({
      log: silent,
      webhookUrl: receiverUrl,
      instances: [{ idInstance: ID, token: TOKEN, fate: "scan", scanAfterMs: 20 }],
    });
    await runSession(sim, ID, TOKEN);
    await waitFor(() => sim!.stats().webhooksFailed === 1);
    expect(sim.state(ID)).toBe("authorized");
  });
});
