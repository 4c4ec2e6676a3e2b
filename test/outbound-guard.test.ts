import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildConnector, request } from "undici";
import { connectorFor } from "../src/greenapi/socket.js";
import { addressProblem, guardedAgent, type OutboundHooks } from "../src/outbound-guard.js";
import { providerPolicy, webhookPolicy } from "../src/fleet/provider/outbound.js";
import { providerFor } from "../src/fleet/provider/provider.js";
import { statePollerOf } from "../src/fleet/triggers/state-sweep.js";
import { startSimulator, type Simulator } from "../src/simulator/index.js";
import { newIdInstance, newToken, testFleet } from "./support/fleet.js";
import { startReceiver, type Receiver } from "./support/receiver.js";
import { pollState } from "./support/state-poll.js";

/**
 * Every outbound connection is judged by the address it would reach. The names here resolve
 * through the test's own resolver, and every connection that passes goes through the test's
 * connect hook, which records the address and connects to a receiver on loopback instead: even a
 * broken check could not send a packet anywhere else.
 */

const ALWAYS_REFUSED = [
  "169.254.169.254", "0.0.0.0", "224.0.0.1", "100.100.100.200", "fd00:ec2::254", "fe80::1", "::",
  "::ffff:169.254.169.254", "::ffff:a9fe:a9fe", "64:ff9b::a9fe:a9fe", "64:ff9b::169.254.169.254", "2002:a9fe:a9fe::1",
];
const PRIVATE = ["127.0.0.1", "127.9.9.9", "10.1.2.3", "172.16.0.1", "192.168.1.1", "100.64.0.1", "::1", "fd12::1", "::ffff:10.0.0.1", "64:ff9b::a00:1"];
const PUBLIC = ["93.184.216.34", "2606:4700::1111", "64:ff9b::5db8:d822"];

describe("addressProblem", () => {
  it("refuses link-local, metadata, multicast and unspecified addresses in every form, even where private ones are allowed", () => {
    for (const ip of ALWAYS_REFUSED) expect(addressProblem(ip, true, "KNOB"), ip).toMatch(/no server may be called/);
  });
  it("refuses loopback and private addresses unless allowed, and names the setting", () => {
    for (const ip of PRIVATE) {
      expect(addressProblem(ip, false, "KNOB"), ip).toMatch(/loopback or private address \(KNOB=true allows those\)/);
      expect(addressProblem(ip, true, "KNOB"), ip).toBeNull();
    }
  });
  it("lets public addresses through", () => {
    for (const ip of PUBLIC) expect(addressProblem(ip, false, "KNOB"), ip).toBeNull();
  });
});

describe("connections of the fleet", () => {
  let receiver: Receiver;
  let sim: Simulator;
  let fleet: ReturnType<typeof testFleet>;
  const resolved = new Map<string, string[]>();
  const reached: string[] = [];

  beforeAll(async () => {
    receiver = await startReceiver();
    sim = await startSimulator({ defaults: { fate: "authorized" }, instances: [{ idInstance: newIdInstance(), token: newToken() }] });
    fleet = testFleet({ QRFLEET_ALLOW_PRIVATE_PROVIDER: "false", QRFLEET_ALLOW_PRIVATE_WEBHOOKS: "false" });
    const toLoopback = buildConnector({});
    const hooks: OutboundHooks = {
      resolve: async (name) => resolved.get(name) ?? [],
      connect: (opts, callback) => {
        reached.push(opts.hostname);
        toLoopback({ ...opts, hostname: "127.0.0.1", port: new URL(receiver.url).port }, callback);
      },
    };
    fleet.outbound = hooks;
  });
  afterAll(async () => {
    await fleet?.close();
    await sim?.close();
    await receiver?.close();
  });

  const instanceAt = (apiUrl: string) => ({ id: "00000000-0000-4000-8000-000000000001", apiUrl, idInstance: newIdInstance(), tokenCiphertext: fleet.box.seal(newToken()) });

  it("provider calls and state polls go nowhere when the name resolves to a forbidden address", async () => {
    for (const ip of [...ALWAYS_REFUSED, ...PRIVATE]) {
      resolved.set("provider.test", [ip]);
      reached.length = 0;
      const provider = providerFor(fleet, instanceAt("http://provider.test"))!;
      await expect(provider.client.getSettings(), ip).rejects.toThrow(/ADDRESS_REFUSED|resolves to/);
      await expect(pollState(statePollerOf(fleet), provider.address), ip).rejects.toThrow(/ADDRESS_REFUSED|resolves to/);
      expect(reached, ip).toEqual([]);
    }
  });

  it("a name with one forbidden address among public ones is refused whole", async () => {
    resolved.set("mixed.test", ["93.184.216.34", "169.254.169.254"]);
    reached.length = 0;
    const { address } = providerFor(fleet, instanceAt("http://mixed.test"))!;
    await expect(pollState(statePollerOf(fleet), address)).rejects.toThrow(/ADDRESS_REFUSED|resolves to/);
    expect(reached).toEqual([]);
  });

  it("an operator's webhook to a name that resolves to a private address is refused; a public one connects to the address checked", async () => {
    const agent = guardedAgent(webhookPolicy(fleet));
    try {
      resolved.set("hooks.test", ["10.0.0.5"]);
      reached.length = 0;
      await expect(request("http://hooks.test/qr", { method: "POST", body: "{}", dispatcher: agent })).rejects.toThrow(/10\.0\.0\.5 is a loopback or private address \(QRFLEET_ALLOW_PRIVATE_WEBHOOKS=true/);
      expect(reached).toEqual([]);

      resolved.set("hooks.test", ["93.184.216.34"]);
      const res = await request("http://hooks.test/qr", { method: "POST", body: "{}", dispatcher: agent });
      await res.body.text();
      expect(reached).toEqual(["93.184.216.34"]);
      expect(receiver.requests.at(-1)?.headers.host).toBe("hooks.test");
    } finally {
      await agent.close();
    }
  });

  it("the QR socket does not connect where its name resolves to a private address, nor to one written in its URL", async () => {
    const [addr] = sim.addresses();
    const port = new URL(sim.url).port;
    const before = sim.stats().httpConnections;
    resolved.set("socket.test", ["127.0.0.1"]);
    for (const apiUrl of [`http://socket.test:${port}`, `http://127.0.0.1:${port}`]) {
      const connect = connectorFor({ ...addr!, apiUrl }, { timeoutMs: 2_000, outbound: providerPolicy(fleet) });
      await expect(connect(new AbortController().signal), apiUrl).rejects.toThrow(/127\.0\.0\.1 is a loopback or private address \(QRFLEET_ALLOW_PRIVATE_PROVIDER=true/);
    }
    expect(sim.stats().httpConnections).toBe(before);
  });
});
