import { spawn } from "node:child_process";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { describe, expect, it } from "vitest";
import { createLogger } from "../../src/log.js";
import { generateInstances, runSimulatorCli, simulatorCommand, startSimulator } from "../../src/simulator/index.js";
import { getJson, openSession, restUrl, runSession, waitFor } from "./client.js";

const silent = createLogger({ level: "silent" });
const HANDLE_TYPES = ["TCPSocketWrap", "TCPServerWrap", "Timeout"];

function handles(): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const type of process.getActiveResourcesInfo()) {
    if (HANDLE_TYPES.includes(type)) counts[type] = (counts[type] ?? 0) + 1;
  }
  return counts;
}

function noMoreThan(before: Record<string, number>): boolean {
  const now = handles();
  return HANDLE_TYPES.every((t) => (now[t] ?? 0) <= (before[t] ?? 0));
}

describe("simulator lifecycle", () => {
  it("close() leaves no socket, server or timer behind", async () => {
    const before = handles();
    // A webhook receiver that never answers, so a webhook is in flight at close().
    let webhookArrived = false;
    let webhookHungUp = false;
    const hanging = createServer((req) => {
      webhookArrived = true;
      const hungUp = () => (webhookHungUp = true);
      req.socket.once("end", hungUp).once("close", hungUp);
    });
    await new Promise<void>((r) => hanging.listen(0, "127.0.0.1", r));
    const webhookUrl = `http://127.0.0.1:${(hanging.address() as AddressInfo).port}/`;
    const [a, b, c] = generateInstances(3, { idPrefix: "7104" });
    const sim = await startSimulator({
      log: silent,
      webhookUrl,
      webhookTimeoutMs: 30_000,
      defaults: { rotationMs: 100, scanWindowMs: 60_000 },
      instances: [
        { ...a!, fate: "never" },
        { ...b!, fate: "silence" },
        { ...c!, fate: "scan", scanAfterMs: 60_000 },
      ],
    });
    const sessions = [openSession(sim, a!.idInstance, a!.token), openSession(sim, b!.idInstance, b!.token)];
    await Promise.all(sessions.map((s) => s.opened));
    await getJson(restUrl(sim, c!.idInstance, "getAuthorizationCode", c!.token), {
      method: "POST",
      body: JSON.stringify({ phoneNumber: 79001234567 }),
    });
    sim.setState(a!.idInstance, "starting");
    await waitFor(() => sessions[0]!.received.length >= 2 && webhookArrived);
    expect(sim.openSockets()).toBe(2);

    await sim.close();
    await Promise.all(sessions.map((s) => s.done));
    expect(sim.openSockets()).toBe(0);
    await waitFor(() => webhookHungUp, 1_000);
    hanging.closeAllConnections();
    await new Promise((r) => hanging.close(r));
    await waitFor(() => noMoreThan(before), 3_000);
  });

  it("a process exits on its own once its simulator is closed", async () => {
    const fixture = new URL("./fixtures/exit-after-close.ts", import.meta.url).pathname;
    const child = spawn(process.execPath, ["--import", "tsx", fixture], { stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (d: Buffer) => (output += d.toString()));
    child.stderr.on("data", (d: Buffer) => (output += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    const hung = setTimeout(() => child.kill("SIGKILL"), 15_000);
    const code = await exited;
    clearTimeout(hung);
    expect(output).toContain("closed 0");
    expect(code).toBe(0);
  });

  it("validates its options and definitions with readable errors", async () => {
    await expect(startSimulator({ port: 70_000 })).rejects.toThrow(/port/);
    await expect(startSimulator({ defaults: { fate: "explode" as never } })).rejects.toThrow(/fate/);
    await expect(startSimulator({ webhookUrl: "ftp://x" })).rejects.toThrow(/webhookUrl/);
    const sim = await startSimulator({ log: silent });
    try {
      expect(() => sim.define({ idInstance: "abc", token: "t".repeat(50) })).toThrow(/idInstance/);
      expect(() => sim.define({ idInstance: "7104000009", token: "a/b" })).toThrow(/token/);
      expect(() => sim.define({ idInstance: "7104000009", token: "t", phone: "+7 900" })).toThrow(/phone/);
      expect(() => sim.state("7104999999")).toThrow(/no instance/);
    } finally {
      await sim.close();
    }
  });

  it("generateInstances is deterministic from its seed", () => {
    const fleet = generateInstances(3);
    expect(fleet.map((i) => i.idInstance)).toEqual(["1101000001", "1101000002", "1101000003"]);
    fleet.forEach((i) => expect(i.token).toMatch(/^[0-9a-f]{50}$/));
    expect(generateInstances(3)).toEqual(fleet);
    expect(generateInstances(3, { seed: 2 })[0]!.token).not.toBe(fleet[0]!.token);
    expect(generateInstances(1, { idPrefix: "7103" })[0]!.idInstance).toBe("7103000001");
    expect(() => generateInstances(-1)).toThrow();
    expect(() => generateInstances(1, { idPrefix: "x" })).toThrow(/idPrefix/);
  });
});

describe("qrfleet simulator command", () => {
  it("prints its instances as JSON and runs until stopped", async () => {
    let output = "";
    const stop = new AbortController();
    const running = simulatorCommand(
      { port: "0", instances: "2", json: true, fate: "authorized" },
      { out: (t) => void (output += t), signal: stop.signal },
    );
    await waitFor(() => output.length > 0);
    const printed = JSON.parse(output) as { url: string; instances: Array<{ apiUrl: string; idInstance: string; token: string }> };
    expect(printed.instances).toHaveLength(2);
    const [first] = printed.instances;
    expect(first!.apiUrl).toBe(printed.url);
    const state = await getJson(`${first!.apiUrl}/waInstance${first!.idInstance}/getStateInstance/${first!.token}`);
    expect(state.body).toEqual({ stateInstance: "authorized" });
    stop.abort();
    await running;
    await expect(fetch(`${printed.url}/`)).rejects.toThrow();
  });

  it("parses raw arguments into a table, and refuses bad ones", async () => {
    let output = "";
    const stop = new AbortController();
    const running = runSimulatorCli(["--port", "0", "--instances", "3", "--rotation-ms", "100", "--window-ms", "300"], {
      out: (t) => void (output += t),
      signal: stop.signal,
    });
    await waitFor(() => output.includes("1101000003"));
    expect(output).toMatch(/apiUrl\s+idInstance\s+apiTokenInstance/);
    const url = /on (http:\/\/\S+)/.exec(output)![1]!;
    const fleet = generateInstances(3);
    const sim = { url, currentQr: () => null } as never;
    const result = await runSession(sim, fleet[0]!.idInstance, fleet[0]!.token);
    expect(result.received.at(-1)!.frame!.type).toBe("timeout");
    stop.abort();
    await running;
    expect(output).toContain("simulator stopped");

    await expect(runSimulatorCli(["--bogus"])).rejects.toThrow(/bogus/);
    await expect(runSimulatorCli(["--port", "abc"])).rejects.toThrow(/--port/);
    await expect(runSimulatorCli(["--fate", "maybe"])).rejects.toThrow(/--fate/);
  });
});
