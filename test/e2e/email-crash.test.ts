import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { FleetContext } from "../../src/fleet/context.js";
import { listDeliveries } from "../../src/fleet/operators/deliveries.js";
import { addOperator, assign } from "../../src/fleet/operators/operators.js";
import { enqueueSession, showSession } from "../../src/fleet/sessions/sessions.js";
import { startSimulator, type Simulator } from "../../src/simulator/index.js";
import type { Daemon } from "../../workers/daemon.js";
import { simulatedInstance, startTestDaemon, testFleet, waitFor } from "../support/fleet.js";
import { startSmtp, type TestSmtp } from "../support/smtp.js";
import { killIfAlive, spawnDaemon, type Spawned } from "../support/spawn.js";

/**
 * "A daemon killed with kill -9 between sending and recording causes no second email."
 * The SMTP server holds its reply to the first message until the daemon that sent it is dead, so
 * the message is on the server while the outbox row still says pending: the worst moment. A
 * second daemon then finds the job stalled and must not send the email again.
 */

/** max(QRFLEET_DELIVERY_LEASE_MS, QRFLEET_WEBHOOK_TIMEOUT_MS + 5 s), as DELIVERY_ENV sets them. */
const LEASE_MS = 6_000;
const DELIVERY_ENV = {
  // The lease a send holds the row for is max(this, QRFLEET_WEBHOOK_TIMEOUT_MS + 5 s): about 6 s here.
  QRFLEET_DELIVERY_LEASE_MS: "2000",
  QRFLEET_WEBHOOK_TIMEOUT_MS: "1000",
};

let sim: Simulator;
let smtp: TestSmtp;
let fleet: FleetContext & { close(): Promise<void> };
let first: Spawned | undefined;
let second: Daemon | undefined;
let killedAt: Date | undefined;

beforeAll(async () => {
  // Connection 1 (the daemon about to die) is never scanned; connection 2 (the survivor's resume) is.
  sim = await startSimulator({ defaults: { fate: "scan", scanOnConnection: 2, scanAfterMs: 1000, rotationMs: 400, scanWindowMs: 20_000 } });
  smtp = await startSmtp({
    async beforeReply() {
      if (!first || killedAt) return; // only the first message is held; any other is answered at once
      killedAt = new Date();
      first.child.kill("SIGKILL");
      await first.exited; // the reply (250) is only written once the sender is gone
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

describe("email across a kill -9", () => {
  it("the survivor records the interrupted email as failed and sends no second one; the session still ends authorized", async () => {
    const instance = await simulatedInstance(fleet, sim, {}, { label: "Crash desk" });
    const { idInstance } = instance;
    const email = `ops-${idInstance}@example.test`;
    const added = await addOperator(fleet, { name: `ops-${idInstance}`, email });
    await assign(fleet, instance.id, added.operator.id);
    const toOperator = () => smtp.messages.filter((m) => m.to.includes(email));

    first = spawnDaemon({ SMTP_URL: smtp.url, ...DELIVERY_ENV });
    await first.waitForLine(/qrfleet daemon started/, 30_000);
    const { session } = await enqueueSession(fleet, instance.id, "admin");

    const exit = await Promise.race([
      first.exited,
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`the first daemon was not killed:\n${first!.lines.slice(-20).join("\n")}`)), 20_000)),
    ]);
    expect(exit.signal).toBe("SIGKILL");
    expect(toOperator()).toHaveLength(1);
    expect(toOperator()[0]!.parsed.subject).toBe("Scan needed: Crash desk (attempt 1 of 3)");

    // What the kill left: the email handed to SMTP, its row still pending (the send was never recorded).
    const emailRow = await fleet.db.delivery.findFirstOrThrow({ where: { event: { sessionId: session.id }, channel: { kind: "email" } } });
    expect(emailRow).toMatchObject({ status: "pending", tries: 0 });
    expect(emailRow.handedOffAt).toBeInstanceOf(Date);
    expect((await showSession(fleet, session.id)).status).toBe("running");

    second = await startTestDaemon({ SMTP_URL: smtp.url, ...DELIVERY_ENV });
    const final = await waitFor("the email delivery to be final", async () => {
      const row = await fleet.db.delivery.findUniqueOrThrow({ where: { id: emailRow.id } });
      return row.status !== "pending" && row;
    }, 30_000, 200);
    expect(final).toMatchObject({ status: "failed", tries: 1, responseStatus: null, handedOffAt: null });
    expect(final.lastError).toMatch(/^interrupted while handing the email to SMTP; not resent/);
    // Picked up only once the lease of the dead run had run out, never during it; and taken for
    // interrupted only once that run could no longer be recording SMTP's answer: two leases on.
    expect(final.updatedAt.getTime()).toBeGreaterThanOrEqual(emailRow.nextTryAt.getTime() - 1000);
    expect(final.updatedAt.getTime() - emailRow.handedOffAt!.getTime()).toBeGreaterThanOrEqual(2 * LEASE_MS - 1000);

    const ended = await waitFor("the session to end", async () => {
      const s = await showSession(fleet, session.id);
      return s.status !== "queued" && s.status !== "running" && s;
    }, 30_000, 200);
    expect(ended.status).toBe("authorized");
    expect(ended.attempts).toHaveLength(1);
    expect(ended.attempts![0]).toMatchObject({ outcome: "authorized", resumes: 1 });
    expect(sim.connections(idInstance)).toBe(2);

    await waitFor("every delivery of the session to be final", async () =>
      (await fleet.db.delivery.count({ where: { event: { sessionId: session.id }, status: "pending" } })) === 0,
    );
    expect(toOperator()).toHaveLength(1); // the resumed attempt's QRs are not first of the attempt: no new email
    const failed = await listDeliveries(fleet, { session: session.id, status: "failed" });
    expect(failed.map((d) => [d.channelKind, d.eventType])).toEqual([["email", "qr.updated"]]);
    expect(failed[0]!.lastError).toContain("interrupted");
  }, 45_000); // ~16 s: a child's boot, its lock running out (4 s) and two leases of the dead run (12 s)
});
