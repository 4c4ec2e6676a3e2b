import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { FleetContext } from "../../src/fleet/context.js";
import { addOperator } from "../../src/fleet/operators/operators.js";
import { enqueueSessionsFor } from "../../src/fleet/sessions/sessions.js";
import { verifyLiveToken } from "../../src/notify/live-link.js";
import { startSimulator, type Simulator } from "../../src/simulator/index.js";
import type { Daemon } from "../../workers/daemon.js";
import { simulatedInstance, startTestDaemon, testFleet, waitFor } from "../support/fleet.js";
import { startSmtp, type ReceivedMail, type TestSmtp } from "../support/smtp.js";
import { killIfAlive, spawnDaemon, type Spawned } from "../support/spawn.js";

/**
 * A digest across a kill -9 at its worst moment: the SMTP server holds its reply to the first
 * digest until the daemon that sent it is dead. The digest may have arrived, so the survivor never
 * sends it again; what it carried is named again in the next digest, so nothing is lost.
 */

/** The lease a send holds a row for is max(QRFLEET_DELIVERY_LEASE_MS, QRFLEET_WEBHOOK_TIMEOUT_MS + 5 s): about 6 s here. */
const ENV = {
  QRFLEET_DELIVERY_LEASE_MS: "2000", QRFLEET_WEBHOOK_TIMEOUT_MS: "1000", QRFLEET_PUBLIC_URL: "https://qr.example.test",
  QRFLEET_DIGEST_WINDOW_MS: "1500", QRFLEET_DIGEST_INTERVAL_MS: "3000",
};
const isDigest = (m: ReceivedMail) => m.to.includes("fleet@example.test") && m.parsed.subject?.startsWith("qrfleet digest:") === true;

let sim: Simulator;
let smtp: TestSmtp;
let fleet: FleetContext & { close(): Promise<void> };
let first: Spawned | undefined;
let second: Daemon | undefined;

beforeAll(async () => {
  sim = await startSimulator({ defaults: { fate: "never", rotationMs: 1000, scanWindowMs: 60_000 } });
  smtp = await startSmtp({
    async beforeReply(mail) {
      if (!first || !isDigest(mail) || first.child.signalCode !== null) return;
      first.child.kill("SIGKILL");
      await first.exited;
    },
  });
  fleet = testFleet({});
});
afterAll(async () => {
  killIfAlive(first);
  await second?.close();
  await fleet?.close();
  await Promise.all([sim?.close(), smtp?.close()]);
});

const namedInstances = (mail: ReceivedMail, box: FleetContext["box"]) =>
  [...String(mail.parsed.html).matchAll(/href="https:\/\/qr\.example\.test\/live\/([^"]+)"/g)].flatMap((m) => {
    const check = verifyLiveToken(box.hmacKey(), m[1]!);
    return check.ok ? [check.instanceId] : [];
  });

describe("a digest across a kill -9", () => {
  it("is never sent twice, and what it carried comes in the next digest", async () => {
    const ids: string[] = [];
    for (let i = 0; i < 8; i++) ids.push((await simulatedInstance(fleet, sim, {}, { label: `Kiosk ${i}` })).id);
    await addOperator(fleet, { name: "fleet", email: "fleet@example.test" });

    first = spawnDaemon({ SMTP_URL: smtp.url, ...ENV });
    await first.waitForLine(/qrfleet daemon started/, 30_000);
    await enqueueSessionsFor(fleet, ids, "admin");
    const exit = await Promise.race([
      first.exited,
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`the first daemon was not killed:\n${first!.lines.slice(-20).join("\n")}`)), 20_000)),
    ]);
    expect(exit.signal).toBe("SIGKILL");
    const interrupted = await fleet.db.delivery.findFirstOrThrow({ where: { event: { type: "digest" } } });
    expect(interrupted).toMatchObject({ status: "pending", tries: 0 });
    expect(interrupted.handedOffAt).toBeInstanceOf(Date);
    const carried = await fleet.db.delivery.count({ where: { digestId: interrupted.id } });
    expect(carried).toBeGreaterThan(0);

    second = await startTestDaemon({ SMTP_URL: smtp.url, ...ENV });
    const next = await waitFor("a second digest to arrive", async () => smtp.messages.filter(isDigest).length >= 2, 40_000, 200);
    expect(next).toBe(true);
    expect(await fleet.db.delivery.findUniqueOrThrow({ where: { id: interrupted.id } })).toMatchObject({
      status: "failed", lastError: expect.stringMatching(/^interrupted while handing the email to SMTP; not resent/),
    });
    const [lost, again] = smtp.messages.filter(isDigest);
    // The interrupted one reached the server once; the next names everything it named.
    expect(smtp.messages.filter(isDigest)).toHaveLength(2);
    expect(namedInstances(again!, fleet.box).sort()).toEqual(expect.arrayContaining(namedInstances(lost!, fleet.box).sort()));
    expect(new Set(namedInstances(again!, fleet.box))).toEqual(new Set(ids));
    expect(await fleet.db.delivery.count({ where: { event: { type: "digest" }, status: "sent" } })).toBe(1);
  }, 60_000);
});
