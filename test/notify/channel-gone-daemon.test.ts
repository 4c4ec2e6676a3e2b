import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { addOperator, assign, getOperator } from "../../src/fleet/operators/operators.js";
import { enqueueSession, showSession } from "../../src/fleet/sessions/sessions.js";
import { startSimulator, type Simulator } from "../../src/simulator/index.js";
import type { Daemon } from "../../workers/daemon.js";
import { simulatedInstance, startTestDaemon, waitFor } from "../support/fleet.js";
import { startReceiver, type Receiver } from "../support/receiver.js";

/**
 * The daemon's own first tries (straight after the QR is stored, not through the notify queue):
 * a receiver that answers 410 Gone is disabled there too, and the admin API enables it again and
 * replays what it missed.
 */

let sim: Simulator;
let receiver: Receiver;
let d: Daemon;

beforeAll(async () => {
  sim = await startSimulator({ defaults: { fate: "scan", rotationMs: 300, scanAfterMs: 1000, scanWindowMs: 3000 } });
  receiver = await startReceiver();
  d = await startTestDaemon({ QRFLEET_DELIVERY_RETRY_MULTIPLIER: "0.001", QRFLEET_WEBHOOK_TIMEOUT_MS: "2000" });
});
afterAll(async () => {
  await d?.close();
  await Promise.all([sim?.close(), receiver?.close()]);
});

async function api(method: string, path: string, body?: unknown) {
  const res = await fetch(`${d.url}/api${path}`, {
    method,
    headers: { authorization: `Bearer ${d.ctx.config.QRFLEET_ADMIN_TOKEN}`, ...(body !== undefined && { "content-type": "application/json" }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

describe("a receiver gone for good, seen by the daemon's first try", () => {
  it("is disabled after its first 410, gets no later QR or outcome, and is replayed by the API once enabled", async () => {
    const instance = await simulatedInstance(d.ctx, sim, {});
    const url = `${receiver.url}?gone=${instance.idInstance}`;
    const added = await addOperator(d.ctx, { name: `gone-${instance.idInstance}`, webhook: url });
    await assign(d.ctx, instance.id, added.operator.id);
    const mine = () => receiver.requests.filter((r) => r.path.endsWith(`gone=${instance.idInstance}`));
    receiver.route((r) => (r.path.endsWith(`gone=${instance.idInstance}`) ? { status: 410, body: "gone" } : undefined));

    const { session } = await enqueueSession(d.ctx, instance.id, "admin");
    await waitFor("the session to end", async () => (await showSession(d.ctx, session.id)).status === "authorized", 15_000);
    await waitFor("every delivery to be final", async () =>
      (await d.ctx.db.delivery.count({ where: { event: { sessionId: session.id }, status: "pending" } })) === 0,
    );
    // Several QR codes rotated and the session ended, but the receiver was asked once.
    expect(mine()).toHaveLength(1);
    const [channel] = (await getOperator(d.ctx, added.operator.id)).channels;
    expect(channel).toMatchObject({ enabled: false, disabledReason: expect.stringContaining("410 Gone") });
    const listed = await api("GET", `/operators/${added.operator.id}`);
    expect(listed.body).toMatchObject({ channels: [{ enabled: false, disabledReason: expect.stringContaining("410") }] });

    receiver.route(null);
    const failed = await d.ctx.db.delivery.findFirstOrThrow({ where: { channelId: channel!.id, responseStatus: 410 } });
    expect((await api("POST", `/deliveries/${failed.id}/retry`)).status).toBe(409);
    expect(await api("POST", `/channels/${channel!.id}/enable`)).toEqual({ status: 200, body: { id: channel!.id, wasDisabled: true } });
    const replay = await api("POST", `/deliveries/${failed.id}/retry`);
    expect(replay).toEqual({ status: 200, body: { replayed: [failed.id], more: false } });
    // The notify queue takes it; its QR's session has ended, so it expires unsent rather than show a dead code.
    await waitFor("the replay to be final", async () => (await d.ctx.db.delivery.findUniqueOrThrow({ where: { id: failed.id } })).status === "expired");
    expect(mine()).toHaveLength(1);
    expect(await api("POST", "/deliveries/retry", { failed: true, channel: channel!.id })).toMatchObject({ status: 200, body: { more: false } });
    expect((await api("POST", "/deliveries/retry", { failed: "yes" })).status).toBe(400);
  });
});
