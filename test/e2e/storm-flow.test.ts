import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { addInstance } from "../../src/fleet/instances/instances.js";
import { addOperator, assign } from "../../src/fleet/operators/operators.js";
import { enqueueSessionsFor } from "../../src/fleet/sessions/sessions.js";
import { verifyLiveToken } from "../../src/notify/live-link.js";
import { startSimulator, type Simulator } from "../../src/simulator/index.js";
import type { Daemon } from "../../workers/daemon.js";
import { newIdInstance, newToken, startTestDaemon, waitFor } from "../support/fleet.js";
import { startReceiver, type Receiver } from "../support/receiver.js";
import { startSmtp, type ReceivedMail, type TestSmtp } from "../support/smtp.js";
import { verified } from "./support.js";

/**
 * 500 instances logged out at once, through the whole daemon: the fleet-wide operator gets one
 * incident email and a handful of digests that name every instance routed to it, each with a live
 * link that opens; the operator assigned to ten of them gets each of the ten at once.
 */

const PUBLIC_URL = "https://qr.example.test";
const FLEET = 500;
const OWN = 10;
let sim: Simulator;
let smtp: TestSmtp;
let receiver: Receiver;
let d: Daemon;

beforeAll(async () => {
  sim = await startSimulator({ defaults: { rotationMs: 2000, scanWindowMs: 8000, fate: "never" } });
  smtp = await startSmtp();
  receiver = await startReceiver();
  d = await startTestDaemon({
    SMTP_URL: smtp.url, QRFLEET_PUBLIC_URL: PUBLIC_URL, QRFLEET_SESSION_ATTEMPTS: "1",
    QRFLEET_DIGEST_WINDOW_MS: "2000", QRFLEET_DIGEST_INTERVAL_MS: "4000", QRFLEET_STORM_WINDOW_MS: "20000",
  });
});
afterAll(async () => {
  await d?.close();
  await Promise.all([sim?.close(), smtp?.close(), receiver?.close()]);
});

const to = (address: string) => (m: ReceivedMail) => m.to.includes(address);
const liveLinks = (mail: ReceivedMail) => [...String(mail.parsed.html).matchAll(/href="(https:\/\/qr\.example\.test\/live\/[^"]+)"/g)].map((m) => m[1]!);

describe("a mass logout", { timeout: 120_000 }, () => {
  it("reaches the fleet-wide operator as one incident and a few digests, and the operator of ten at once", async () => {
    const ids: string[] = [];
    for (let i = 0; i < FLEET; i++) {
      const idInstance = newIdInstance();
      const token = newToken();
      sim.define({ idInstance, token });
      ids.push((await addInstance(d.ctx, { apiUrl: sim.url, idInstance, token, label: `Shop ${i}` })).id);
    }
    const fleet = await addOperator(d.ctx, { name: "fleet", email: "fleet@example.test", webhook: new URL("/fleet", receiver.url).href });
    await addOperator(d.ctx, { name: "desk", email: "desk@example.test" });
    for (const id of ids.slice(0, OWN)) await assign(d.ctx, id, "desk");

    // What a sweep does when it finds them logged out.
    await enqueueSessionsFor(d.ctx, ids, "sweep");
    await waitFor("every session to end", async () => (await d.ctx.db.qrSession.count({ where: { endedAt: null } })) === 0, 90_000, 500);
    await waitFor("every delivery to go", async () => (await d.ctx.db.delivery.count({ where: { status: { in: ["pending", "held"] } } })) === 0, 30_000, 500);

    const incidents = smtp.messages.filter((m) => to("fleet@example.test")(m) && m.parsed.subject?.startsWith("Fleet incident:"));
    expect(incidents).toHaveLength(1);
    expect(incidents[0]!.parsed.subject).toMatch(/^Fleet incident: \d+ instances logged out within 1 min$/);
    const hooks = receiver.requests.filter((r) => r.path === "/fleet").map((r) => verified(r, fleet.webhookSecret!));
    expect(hooks.filter((h) => h.type === "fleet.incident")).toHaveLength(1);

    const digests = smtp.messages.filter((m) => to("fleet@example.test")(m) && m.parsed.subject?.startsWith("qrfleet digest:"));
    expect(digests.length).toBeGreaterThanOrEqual(2);
    expect(digests.length).toBeLessThanOrEqual(6);
    expect(smtp.messages.filter(to("fleet@example.test"))).toHaveLength(incidents.length + digests.length);

    // Every unassigned instance is named with a live link that opens its own page.
    const linked = new Set<string>();
    for (const link of digests.flatMap(liveLinks)) {
      const check = verifyLiveToken(d.ctx.box.hmacKey(), link.slice(`${PUBLIC_URL}/live/`.length));
      if (check.ok) linked.add(check.instanceId);
    }
    expect([...linked].sort()).toEqual(ids.slice(OWN).sort());
    const sample = digests.flatMap(liveLinks).slice(0, 3);
    for (const link of sample) expect((await fetch(`${d.url}${new URL(link).pathname}`)).status).toBe(200);

    // The desk's ten, each on its own: a scan email per instance, then its ending.
    const desk = smtp.messages.filter(to("desk@example.test"));
    const scans = desk.filter((m) => m.parsed.subject?.startsWith("Scan needed:"));
    expect(new Set(scans.map((m) => m.parsed.headers.get("x-qrfleet-instance"))).size).toBe(OWN);
    expect(scans).toHaveLength(OWN);
    expect(desk.filter((m) => m.parsed.subject?.startsWith("qrfleet digest:"))).toEqual([]);
  });
});
