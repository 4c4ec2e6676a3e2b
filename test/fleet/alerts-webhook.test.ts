import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sweepFleet } from "../../src/fleet/triggers/sweep.js";
import { createLogger } from "../../src/log.js";
import { startSimulator, type Simulator } from "../../src/simulator/index.js";
import type { Daemon } from "../../workers/daemon.js";
import { newToken, startTestDaemon, testFleet, waitFor } from "../support/fleet.js";
import { startReceiver, type Receiver } from "../support/receiver.js";
import { startSmtp, type TestSmtp } from "../support/smtp.js";
import { countOf, instanceEvents, received, watchedInstance } from "./alert-support.js";

/** The provider's state webhook runs the same playbook as the sweep, and the two agree on one alert per episode. */

let sim: Simulator;
let smtp: TestSmtp;
let receiver: Receiver;
let d: Daemon;

beforeAll(async () => {
  [smtp, receiver] = await Promise.all([startSmtp(), startReceiver()]);
  d = await startTestDaemon({ SMTP_URL: smtp.url });
  // Instances without a webhook token are refused by the daemon: the simulator's warnings about it are not news.
  sim = await startSimulator({ webhookUrl: `${d.url}/hooks/greenapi`, defaults: { rotationMs: 200, scanWindowMs: 60_000 }, log: createLogger({ level: "silent" }) });
});
afterAll(async () => {
  await sim?.close();
  await d?.close();
  await Promise.all([smtp?.close(), receiver?.close()]);
});

describe("the provider's state webhook", () => {
  it("alerts on blocked as the sweep would, once for both, and says recovered when the webhook reports it linked", async () => {
    const hookToken = `hook-${newToken()}`;
    const w = await watchedInstance(d.ctx, sim, receiver, [{ state: "blocked" }], { webhookToken: hookToken }, { webhookToken: hookToken });
    await waitFor("the webhook's alert", async () => countOf(await instanceEvents(d.ctx, w.id), "instance.alert") === 1);
    for (let i = 0; i < 2; i += 1) await sweepFleet(d.ctx);
    expect((await instanceEvents(d.ctx, w.id)).map((e) => e.type)).toEqual(["instance.alert"]);

    sim.setState(w.idInstance, "authorized");
    await waitFor("the webhook's recovery", async () => countOf(await instanceEvents(d.ctx, w.id), "instance.recovered") === 1);
    await sweepFleet(d.ctx);
    expect((await instanceEvents(d.ctx, w.id)).map((e) => e.type)).toEqual(["instance.alert", "instance.recovered"]);
    await received(smtp, receiver, w, "instance.alert", 1);
    await received(smtp, receiver, w, "instance.recovered", 1);
  });

  it("follows QRFLEET_STATE_POLICIES: a state set to record alerts nobody, one set to alert does", async () => {
    const quiet = testFleet({ QRFLEET_REDIS_PREFIX: d.ctx.config.QRFLEET_REDIS_PREFIX, QRFLEET_STATE_POLICIES: "blocked=record,sleepMode=alert" });
    try {
      const blocked = await watchedInstance(quiet, sim, receiver, [{ state: "blocked" }]);
      const asleep = await watchedInstance(quiet, sim, receiver, [{ state: "sleepMode" }]);
      await sweepFleet(quiet);
      await sweepFleet(quiet);
      expect(await instanceEvents(quiet, blocked.id)).toEqual([]);
      expect((await instanceEvents(quiet, asleep.id)).map((e) => e.type)).toEqual(["instance.alert"]);
    } finally {
      await quiet.close();
    }
  });
});
