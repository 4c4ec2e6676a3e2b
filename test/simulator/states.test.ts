import { afterEach, describe, expect, it } from "vitest";
import { createLogger } from "../../src/log.js";
import { startSimulator, type Simulator } from "../../src/simulator/index.js";
import { getJson, restUrl, waitFor } from "./client.js";

/** Scripted provider states: a timeline per instance (its webhooks: webhook.test.ts), and a reboot that passes through `starting`. */

let sim: Simulator | undefined;

afterEach(async () => {
  await sim?.close();
  sim = undefined;
});

const ID = "7103000401";
const TOKEN = "e".repeat(50);
const silent = createLogger({ level: "silent" });
const state = async (s: Simulator) => ((await getJson(restUrl(s, ID, "getStateInstance", TOKEN))).body as { stateInstance: string }).stateInstance;

describe("simulated provider states", () => {
  it("plays an instance's timeline step by step, as getStateInstance answers", async () => {
    sim = await startSimulator({
      log: silent,
      instances: [{ idInstance: ID, token: TOKEN, states: [{ state: "starting", forMs: 150 }, { state: "sleepMode", forMs: 150 }, { state: "authorized" }] }],
    });
    expect(await state(sim)).toBe("starting");
    await waitFor(() => sim!.state(ID) === "sleepMode");
    await waitFor(() => sim!.state(ID) === "authorized");
    expect(await state(sim)).toBe("authorized");
  });

  it("reboots through starting to the state before, a stuck start to authorized, or to the scripted state", async () => {
    sim = await startSimulator({ log: silent, instances: [{ idInstance: ID, token: TOKEN, rebootMs: 100 }] });
    sim.playStates(ID, [{ state: "starting" }]);
    expect((await getJson(restUrl(sim, ID, "reboot", TOKEN))).body).toEqual({ isReboot: true });
    expect(await state(sim)).toBe("starting");
    await waitFor(() => sim!.state(ID) === "authorized");

    sim.setState(ID, "yellowCard");
    await getJson(restUrl(sim, ID, "reboot", TOKEN));
    await waitFor(() => sim!.state(ID) === "yellowCard");

    sim.script(ID, { rebootMs: 0, rebootTo: "starting" });
    await getJson(restUrl(sim, ID, "reboot", TOKEN));
    expect(await state(sim)).toBe("starting");
    expect([sim.reboots(ID), sim.stats().reboots]).toEqual([3, 3]);
  });

  it("lets a state set by hand stop a timeline, and refuses a timeline with an open-ended step before the last", async () => {
    const witness = "7103000402";
    sim = await startSimulator({ log: silent, instances: [{ idInstance: ID, token: TOKEN }, { idInstance: witness, token: TOKEN }] });
    sim.playStates(ID, [{ state: "blocked", forMs: 100 }, { state: "authorized" }]);
    sim.playStates(witness, [{ state: "blocked", forMs: 150 }, { state: "authorized" }]);
    sim.setState(ID, "sleepMode");
    await waitFor(() => sim!.state(witness) === "authorized"); // the same step has passed for the other instance
    expect(sim.state(ID)).toBe("sleepMode");
    expect(() => sim!.playStates(ID, [{ state: "blocked" }, { state: "authorized" }])).toThrow(/every step but the last needs forMs/);
  });
});
