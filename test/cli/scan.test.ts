import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "../../src/log.js";
import { startSimulator, type Script, type Simulator } from "../../src/simulator/index.js";
import { newIdInstance, newToken } from "../support/fleet.js";
import { cliRunner, drawnQrs, noStack } from "./run.js";
import { decodeTerminalQr } from "./terminal-art.js";

const cli = cliRunner();
// The simulator here rotates every 200 ms; at the default QR pace (500 ms) scan would show every other one.
const qrfleet = Object.assign((args: string[]) => cli(args, { QRFLEET_QR_MIN_INTERVAL_MS: "20" }), { start: cli.start });
let sim: Simulator;

beforeAll(async () => {
  sim = await startSimulator({
    defaults: { rotationMs: 200, scanWindowMs: 1500 },
    log: createLogger({ level: "silent" }),
  });
});
afterAll(() => sim.close());

function instance(script: Partial<Script>) {
  const def = { idInstance: newIdInstance(), token: newToken(), ...script };
  sim.define(def);
  return def;
}

const scanArgs = (i: { idInstance: string; token: string }) => ["scan", "--api-url", sim.url, "--id", i.idInstance, "--token", i.token];

describe("qrfleet scan", { timeout: 60_000 }, () => {
  it("draws each QR as a terminal QR that decodes to the provider's QR, then reports authorized with the phone (exit 0)", async () => {
    const inst = instance({ fate: "scan", scanAfterMs: 700, phone: "79005550042" });
    const r = await qrfleet(scanArgs(inst));
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("authorized: the instance is linked to phone +79005550042");
    expect(r.stdout).toMatch(/^QR 1 — received \d\d:\d\d:\d\d, valid ~20 s$/m);
    const drawn = drawnQrs(r.stdout);
    expect(drawn.length).toBeGreaterThanOrEqual(2);
    // What a phone would read from the terminal is what the provider encoded, QR by QR.
    const texts = drawn.map((art) => decodeTerminalQr(art));
    texts.forEach((text, i) => expect(text).toMatch(new RegExp(`^qrfleet-sim:${inst.idInstance}:1:${i + 1}:`)));
    expect(sim.state(inst.idInstance)).toBe("authorized");
    const again = await qrfleet(scanArgs(inst));
    expect(again.code).toBe(0);
    expect(again.stdout).toContain("already logged in");
  });

  it("reports timed out after the QRs rotated unscanned (exit 1)", async () => {
    const inst = instance({ fate: "never" });
    const r = await qrfleet(scanArgs(inst));
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toBe("timed out: the scan window passed with no scan");
    expect(drawnQrs(r.stdout).length).toBeGreaterThanOrEqual(2);
    expect(r.stdout).toMatch(/^QR 2 — received \d\d:\d\d:\d\d, valid ~\d+ s$/m);
  });

  it("prints one JSON line per event with --json", async () => {
    const inst = instance({ fate: "never" });
    const r = await qrfleet([...scanArgs(inst), "--json"]);
    expect(r.code).toBe(1);
    const events = r.stdout.trim().split("\n").map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(events[0]).toMatchObject({ event: "opened" });
    const qrs = events.filter((e) => e.event === "qr");
    expect(qrs.length).toBeGreaterThanOrEqual(2);
    expect(qrs[0]).toMatchObject({ number: 1, text: expect.stringMatching(`^qrfleet-sim:${inst.idInstance}:`), sha256: expect.any(String) });
    expect(events.at(-1)).toMatchObject({ event: "outcome", outcome: "timed_out" });
  });

  it("fails with invalid token and never prints the token (exit 1)", async () => {
    const inst = instance({ fate: "never" });
    const wrong = newToken();
    const r = await qrfleet(scanArgs({ idInstance: inst.idInstance, token: wrong }));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^failed \(invalid token\): .*HTTP 401/);
    expect(r.stdout + r.stderr).not.toContain(wrong);
    expect(noStack(r.stderr)).toBe(true);
  });

  it("refuses an apiUrl that is not a URL or an id that is not digits before connecting (exit 2)", async () => {
    const token = newToken();
    const [badUrl, badId] = await Promise.all([
      qrfleet(["scan", "--api-url", "not a url", "--id", "1101000001", "--token", token]),
      qrfleet(["scan", "--api-url", sim.url, "--id", "11o1", "--token", token]),
    ]);
    expect(badUrl.code).toBe(2);
    expect(badUrl.stderr).toBe('qrfleet: apiUrl "not a url" is not a URL: expected e.g. https://7103.api.greenapi.com\n');
    expect(badId.code).toBe(2);
    expect(badId.stderr).toBe('qrfleet: idInstance "11o1" must be digits only, e.g. 7103000001\n');
    expect(badUrl.stdout + badId.stdout).toBe("");
  });

  it("ends cancelled on Ctrl-C (exit 1)", async () => {
    const inst = instance({ fate: "never", scanWindowMs: 30_000 });
    const run = qrfleet.start(scanArgs(inst));
    const deadline = Date.now() + 30_000;
    while (!/QR 1 — received/.test(run.output()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    run.signal("SIGINT");
    const r = await run.result;
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toBe("cancelled: stopped with Ctrl-C");
  });
});
