import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { rotateKey } from "../../src/fleet/upkeep/key-rotation.js";
import { addOperator, assign } from "../../src/fleet/operators/operators.js";
import { enqueueSession, showSession } from "../../src/fleet/sessions/sessions.js";
import { SecretBox } from "../../src/secrets.js";
import { startSimulator, type Script, type Simulator } from "../../src/simulator/index.js";
import type { Daemon } from "../../workers/daemon.js";
import { verified } from "../e2e/support.js";
import { simulatedInstance, startTestDaemon, testFleet, waitFor } from "../support/fleet.js";
import { startReceiver, type Receiver } from "../support/receiver.js";

/**
 * A daemon rolled onto the new key (old one listed as previous) serves a fleet whose values are
 * all under the old key, keeps serving it while `rotate-key` rewrites them under its feet, and
 * after: the provider's webhook is authenticated, instance tokens open, webhooks are signed.
 */

const OLD = randomBytes(32).toString("base64");
const NEW = randomBytes(32).toString("base64");
let sim: Simulator;
let receiver: Receiver;
let before: ReturnType<typeof testFleet>;
let daemon: Daemon;

beforeAll(async () => {
  sim = await startSimulator({ defaults: { rotationMs: 150, scanWindowMs: 30_000 } });
  receiver = await startReceiver();
  before = testFleet({ QRFLEET_SECRET_KEY: OLD });
  daemon = await startTestDaemon({ QRFLEET_SECRET_KEY: NEW, QRFLEET_SECRET_KEYS_PREVIOUS: OLD, QRFLEET_WEBHOOK_TIMEOUT_MS: "3000" });
});
afterAll(async () => {
  await daemon?.close();
  await before?.close();
  await Promise.all([sim?.close(), receiver?.close()]);
});

/** An instance with a webhook token and an operator's webhook channel, all sealed under the old key. */
async function instanceUnderOldKey(script: Partial<Script>) {
  const webhookToken = `wh-${randomBytes(12).toString("hex")}`;
  const instance = await simulatedInstance(before, sim, script, { webhookToken });
  const added = await addOperator(before, { name: `ops-${instance.idInstance}`, webhook: `${receiver.url}?i=${instance.idInstance}` });
  await assign(before, instance.id, added.operator.id);
  return { ...instance, webhookToken, secret: added.webhookSecret! };
}

const hooksOf = (idInstance: string, secret: string) =>
  receiver.requests.filter((r) => r.path.endsWith(`?i=${idInstance}`)).map((r) => verified(r, secret));

async function ended(sessionId: string) {
  return waitFor("the session to end", async () => {
    const s = await showSession(daemon.ctx, sessionId);
    return s.status !== "queued" && s.status !== "running" && s;
  });
}

/** The provider reporting the instance unlinked, authenticated by the instance's webhook token. */
async function providerSaysUnlinked(idInstance: string, webhookToken: string) {
  const res = await fetch(`${daemon.url}/hooks/greenapi`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${webhookToken}` },
    body: JSON.stringify({ typeWebhook: "stateInstanceChanged", instanceData: { idInstance: Number(idInstance) }, stateInstance: "notAuthorized", timestamp: Math.floor(Date.now() / 1000) }),
  });
  return { status: res.status, body: (await res.json()) as { instances: Array<{ action: string; sessionId?: string }> } };
}

describe("a daemon with the new key and the old one as previous", () => {
  it("works before, during and after the rotation", { timeout: 60_000 }, async () => {
    const linked = await instanceUnderOldKey({ fate: "scan", scanAfterMs: 500 });
    const waiting = await instanceUnderOldKey({ fate: "never" });

    // Before: every value is under the old key, and the daemon opens them all.
    const first = await providerSaysUnlinked(linked.idInstance, linked.webhookToken);
    expect(first.status).toBe(200);
    expect(first.body.instances[0]).toMatchObject({ action: "enqueued" });
    expect((await ended(first.body.instances[0]!.sessionId!)).status).toBe("authorized");
    await waitFor("the authorized webhook", async () => hooksOf(linked.idInstance, linked.secret).some((h) => h.type === "session.authorized"));

    // During: a session runs and keeps delivering signed QR webhooks while its row is rewritten.
    const { session } = await enqueueSession(daemon.ctx, waiting.id, "admin");
    await waitFor("a QR webhook", async () => hooksOf(waiting.idInstance, waiting.secret).some((h) => h.type === "qr.updated"));
    const report = await rotateKey(daemon.ctx, { batchSize: 1 });
    expect(report.kinds.map((k) => [k.kind, k.reEncrypted, k.unreadable.length])).toEqual([
      ["instance_token", 2, 0], ["instance_webhook_token", 2, 0], ["channel_secret", 2, 0],
    ]);
    const seenAtRotation = hooksOf(waiting.idInstance, waiting.secret).length;
    await waitFor("QR webhooks after the rotation", async () => hooksOf(waiting.idInstance, waiting.secret).length >= seenAtRotation + 2);
    expect((await showSession(daemon.ctx, session.id)).status).toBe("running");

    // After: the old key is no longer needed by anything stored.
    const newOnly = new SecretBox(NEW);
    const rows = await daemon.ctx.db.instance.findMany({ where: { id: { in: [linked.id, waiting.id] } } });
    for (const row of rows) expect(newOnly.unseal(row.tokenCiphertext).current).toBe(true);
    sim.setState(linked.idInstance, "notAuthorized"); // the phone was unlinked again
    const again = await providerSaysUnlinked(linked.idInstance, linked.webhookToken);
    expect(again.status).toBe(200);
    expect((await ended(again.body.instances[0]!.sessionId!)).status).toBe("authorized");
    expect((await providerSaysUnlinked(linked.idInstance, "wh-not-the-token")).status).toBe(401);
  });
});
