import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { describeInstance } from "../../src/cli/instances.js";
import { listAlerts, showInstanceWithAlerts } from "../../src/fleet/instances/alert-list.js";
import { sweepFleet } from "../../src/fleet/triggers/sweep.js";
import { startSimulator, type Script, type Simulator, type StateStep } from "../../src/simulator/index.js";
import type { Daemon } from "../../workers/daemon.js";
import { startTestDaemon, testFleet } from "../support/fleet.js";
import { startReceiver, type Receiver } from "../support/receiver.js";
import { startSmtp, type TestSmtp } from "../support/smtp.js";
import { countOf, instanceEvents, received, sweepUntil, watchedInstance, type Watched } from "./alert-support.js";

/**
 * Provider states with a playbook, through the running daemon: the simulator plays each state,
 * sweeps report it again and again, and the operators get one alert per episode (by webhook and
 * email, through the outbox) and one "recovered" when it ends.
 */

const DAY_MS = 86_400_000;
let sim: Simulator;
let smtp: TestSmtp;
let receiver: Receiver;
let d: Daemon;

beforeAll(async () => {
  [sim, smtp, receiver] = await Promise.all([startSimulator({ defaults: { rotationMs: 200, scanWindowMs: 60_000 } }), startSmtp(), startReceiver()]);
  d = await startTestDaemon({
    SMTP_URL: smtp.url,
    QRFLEET_REBOOT_AFTER_MS: "400",
    QRFLEET_REBOOT_ALERT_AFTER_MS: "300",
    QRFLEET_SLEEP_WARN_AFTER_MS: "500",
  });
});
afterAll(async () => {
  await d?.close();
  await Promise.all([sim?.close(), smtp?.close(), receiver?.close()]);
});

/** Leaves the instance out of the sweeps of the tests that follow. */
const retire = (w: Watched) => d.ctx.db.instance.update({ where: { id: w.id }, data: { enabled: false } });
const watch = (states: StateStep[], script: Partial<Script> = {}) => watchedInstance(d.ctx, sim, receiver, states, script);

describe("provider states with a playbook", () => {
  it("blocked and yellowCard alert once per episode however often they are swept, and each episode ends with one recovered", async () => {
    const w = await watch([{ state: "blocked" }]);
    for (let i = 0; i < 3; i += 1) await sweepFleet(d.ctx);
    expect(await instanceEvents(d.ctx, w.id)).toMatchObject([{ type: "instance.alert", data: { state: "blocked" } }]);
    const alert = await received(smtp, receiver, w, "instance.alert", 1);
    expect(alert.mails[0]!.parsed.subject).toBe("Blocked: Desk blocked");
    expect(alert.mails[0]!.parsed.text).toContain("WhatsApp has blocked the number of instance");
    expect(alert.hooks[0]!.data).toMatchObject({ instanceId: w.id, idInstance: w.idInstance, state: "blocked", sessionId: null });
    const shown = await showInstanceWithAlerts(d.ctx, w.id);
    expect(shown.alerts).toMatchObject([{ state: "blocked", endedAt: null }]);
    expect(describeInstance(shown)).toMatch(/^alert: +blocked since \d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ \(told /m); // qrfleet instance show
    const api = (path: string) => fetch(`${d.url}/api${path}`, { headers: { authorization: `Bearer ${d.ctx.config.QRFLEET_ADMIN_TOKEN}` } }).then((r) => r.json() as Promise<{ alerts: Array<Record<string, unknown>> }>);
    expect((await api(`/instances/${w.idInstance}`)).alerts).toMatchObject([{ id: shown.alerts[0]!.id, state: "blocked" }]);
    expect((await api(`/alerts?state=blocked`)).alerts.map((a) => a.instanceId)).toEqual([w.id]);

    sim.setState(w.idInstance, "authorized");
    for (let i = 0; i < 2; i += 1) await sweepFleet(d.ctx);
    const recovered = await received(smtp, receiver, w, "instance.recovered", 1);
    expect(recovered.mails[0]!.parsed.subject).toBe("Recovered: Desk blocked is no longer blocked");
    expect(recovered.hooks[0]!.data).toMatchObject({ state: "blocked", endState: "authorized" });
    expect((await showInstanceWithAlerts(d.ctx, w.id)).alerts).toEqual([]);
    expect((await api(`/alerts?all=true&instance=${w.id}`)).alerts).toMatchObject([{ state: "blocked", endState: "authorized" }]);

    // A second episode, then a third of another state straight after it: each alerted and recovered once.
    sim.setState(w.idInstance, "yellowCard");
    for (let i = 0; i < 2; i += 1) await sweepFleet(d.ctx);
    sim.setState(w.idInstance, "blocked");
    for (let i = 0; i < 2; i += 1) await sweepFleet(d.ctx);
    sim.setState(w.idInstance, "authorized");
    await sweepFleet(d.ctx);
    const events = await instanceEvents(d.ctx, w.id);
    expect(events.map((e) => `${e.type}:${String(e.data.state)}`)).toEqual([
      "instance.alert:blocked", "instance.recovered:blocked",
      "instance.alert:yellowCard", "instance.recovered:yellowCard",
      "instance.alert:blocked", "instance.recovered:blocked",
    ]);
    const suspended = await received(smtp, receiver, w, "instance.alert", 3);
    expect(suspended.mails.map((m) => m.parsed.subject)).toContain("Sending suspended: Desk blocked");
    await received(smtp, receiver, w, "instance.recovered", 3);
    await retire(w);
  });

  it("a starting that lasts is rebooted once and comes back; one that outlives its reboot alerts once", async () => {
    const healed = await watch([{ state: "starting" }], { rebootMs: 100, rebootTo: "previous" });
    const stuck = await watch([{ state: "starting" }], { rebootMs: 0, rebootTo: "starting" });
    await sweepFleet(d.ctx);
    expect([sim.reboots(healed.idInstance), sim.reboots(stuck.idInstance)]).toEqual([0, 0]); // not yet past QRFLEET_REBOOT_AFTER_MS
    await sweepUntil(d.ctx, "both to be rebooted", async () => sim.reboots(healed.idInstance) === 1 && sim.reboots(stuck.idInstance) === 1);
    await sweepUntil(d.ctx, "the healed one to be seen authorized", async () =>
      (await d.ctx.db.instance.findUniqueOrThrow({ where: { id: healed.id } })).lastState === "authorized",
    );
    await sweepUntil(d.ctx, "the stuck one to alert", async () => countOf(await instanceEvents(d.ctx, stuck.id), "instance.alert") === 1);
    for (let i = 0; i < 3; i += 1) await sweepFleet(d.ctx);

    expect([sim.reboots(healed.idInstance), sim.reboots(stuck.idInstance)]).toEqual([1, 1]);
    expect(await instanceEvents(d.ctx, healed.id)).toEqual([]); // rebooted and fine: nobody needed telling
    const alert = await received(smtp, receiver, stuck, "instance.alert", 1);
    expect(alert.mails[0]!.parsed.subject).toBe("Stuck starting: Desk starting");
    expect(alert.mails[0]!.parsed.text).toMatch(/qrfleet rebooted it at \d{4}-\d\d-\d\d \d\d:\d\d UTC, and it still is/);
    expect(alert.hooks[0]!.data.rebootedAt).toEqual(expect.any(String));

    sim.setState(stuck.idInstance, "authorized");
    await sweepFleet(d.ctx);
    expect((await instanceEvents(d.ctx, stuck.id)).map((e) => e.type)).toEqual(["instance.alert", "instance.recovered"]);
    await Promise.all([retire(healed), retire(stuck)]);
  });

  it("a phone in sleepMode past the warning time is warned of once, naming the day WhatsApp unlinks it", async () => {
    const w = await watch([{ state: "sleepMode" }]);
    await sweepFleet(d.ctx);
    expect(await instanceEvents(d.ctx, w.id)).toEqual([]); // not yet past QRFLEET_SLEEP_WARN_AFTER_MS
    await sweepUntil(d.ctx, "the warning", async () => (await instanceEvents(d.ctx, w.id)).length > 0);
    for (let i = 0; i < 2; i += 1) await sweepFleet(d.ctx);

    const episode = await d.ctx.db.stateEpisode.findFirstOrThrow({ where: { instanceId: w.id } });
    const deadline = new Date(episode.since.getTime() + 14 * DAY_MS);
    expect(episode.deadline).toEqual(deadline);
    const { mails, hooks } = await received(smtp, receiver, w, "instance.alert", 1);
    const day = `${deadline.toISOString().slice(0, 16).replace("T", " ")} UTC`;
    expect(mails[0]!.parsed.subject).toBe(`Phone offline: Desk sleepMode — bring it online before ${day}`);
    expect(mails[0]!.parsed.text).toContain(`offline for about 14 days: switch the phone on, connect it to the internet and open WhatsApp before ${day}`);
    expect(hooks[0]!.data).toMatchObject({ state: "sleepMode", deadline: deadline.toISOString() });
    expect((await listAlerts(d.ctx, { state: "sleepMode" })).map((a) => a.instanceId)).toEqual([w.id]);
    await retire(w);
  });

  it("sweeps of two daemons at once still alert once, and reboot once", async () => {
    // The other daemon reboots at once: its two sweeps race for the same reboot.
    const other = testFleet({ QRFLEET_REDIS_PREFIX: d.ctx.config.QRFLEET_REDIS_PREFIX, QRFLEET_REBOOT_AFTER_MS: "0" });
    try {
      const blocked = await watch([{ state: "blocked" }]);
      const starting = await watch([{ state: "starting" }], { rebootMs: 0, rebootTo: "starting" });
      await Promise.all([sweepFleet(d.ctx), sweepFleet(other), sweepFleet(d.ctx), sweepFleet(other)]);
      await Promise.all([sweepFleet(d.ctx), sweepFleet(other)]);

      expect(await instanceEvents(d.ctx, blocked.id)).toMatchObject([{ type: "instance.alert" }]);
      expect(await d.ctx.db.stateEpisode.count({ where: { instanceId: blocked.id } })).toBe(1);
      expect(sim.reboots(starting.idInstance)).toBe(1);
      await received(smtp, receiver, blocked, "instance.alert", 1);
      await Promise.all([retire(blocked), retire(starting)]);
    } finally {
      await other.close();
    }
  });
});
