import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { providerPace } from "../../src/fleet/provider/provider-pace.js";
import { addOperator, assign } from "../../src/fleet/operators/operators.js";
import { cancelSession, enqueueSession, showSession } from "../../src/fleet/sessions/sessions.js";
import { createLogger } from "../../src/log.js";
import { startSimulator, type Script, type Simulator } from "../../src/simulator/index.js";
import type { Daemon } from "../../workers/daemon.js";
import { verified } from "../e2e/support.js";
import { newIdInstance, simulatedInstance, startTestDaemon, waitFor } from "../support/fleet.js";
import { startReceiver, type Receiver } from "../support/receiver.js";
import { startRedisCluster, type OwnRedisCluster } from "../support/redis-cluster.js";

/**
 * Two daemons on a three-node Redis Cluster of the test's own (REDIS_CLUSTER=true, one node as the
 * seed), as a fleet on a managed cluster runs: sessions, deliveries and provider pacing all go
 * through the cluster, and every key lands under the hash-tagged prefix.
 */

let cluster: OwnRedisCluster;
let sim: Simulator;
let receiver: Receiver;
let daemons: Daemon[] = [];
/** What the keys must start with: the configured prefix as a hash tag. */
const prefix = () => `{${daemons[0]!.ctx.config.QRFLEET_REDIS_PREFIX}}:`;

beforeAll(async () => {
  [cluster, sim, receiver] = await Promise.all([
    startRedisCluster(),
    startSimulator({ defaults: { rotationMs: 300, scanWindowMs: 1500 } }),
    startReceiver(),
  ]);
  const env = { REDIS_URL: cluster.url, REDIS_CLUSTER: "true", QRFLEET_WEBHOOK_TIMEOUT_MS: "3000" };
  daemons = [await startTestDaemon(env), await startTestDaemon(env)];
}, 60_000);
afterAll(async () => {
  await Promise.allSettled(daemons.map((d) => d.close()));
  await Promise.allSettled([sim?.close(), receiver?.close()]);
  await cluster?.stop();
}, 60_000);

/** An instance with its own webhook operator; its admin session is started through daemon `via`. */
async function startSession(script: Partial<Script>, via: Daemon) {
  const instance = await simulatedInstance(via.ctx, sim, script);
  const added = await addOperator(via.ctx, { name: `ops-${instance.idInstance}`, webhook: `${receiver.url}?instance=${instance.idInstance}` });
  await assign(via.ctx, instance.id, added.operator.id);
  const { session } = await enqueueSession(via.ctx, instance.id, "admin");
  return { instance, session, secret: added.webhookSecret! };
}

describe("a fleet on Redis Cluster", () => {
  it("runs sessions to their outcomes across two daemons and delivers their signed webhooks", async () => {
    const fates: Array<[Partial<Script>, string, string]> = [
      [{ fate: "scan", scanAfterMs: 700 }, "authorized", "session.authorized"],
      [{ fate: "authorized" }, "already_logged", "session.already_logged"],
      [{ fate: "wrong_token" }, "failed", "session.failed"],
      [{ fate: "never" }, "timed_out", "session.timed_out"],
    ];
    const started = await Promise.all(fates.map(([script], i) => startSession(script, daemons[i % 2]!)));
    for (const [i, s] of started.entries()) {
      const [, status, outcomeEvent] = fates[i]!;
      const ended = await waitFor(`session ${i} to end`, async () => {
        const view = await showSession(daemons[0]!.ctx, s.session.id);
        return view.status !== "queued" && view.status !== "running" && view;
      }, 20_000);
      expect(ended.status).toBe(status);
      const outcome = await receiver.waitFor((r) => r.path.endsWith(`?instance=${s.instance.idInstance}`) && r.body.includes(`"${outcomeEvent}"`), 10_000);
      expect(verified(outcome, s.secret)).toMatchObject({ type: outcomeEvent, data: { sessionId: s.session.id } });
    }
    // The timed-out session went through its backoff (delayed jobs) to its last attempt.
    expect((await showSession(daemons[0]!.ctx, started[3]!.session.id)).attempts).toHaveLength(3);
    // The QR codes went out too, as signed qr.updated webhooks.
    const scan = started[0]!;
    const qrHooks = receiver.requests.filter((r) => r.path.endsWith(`?instance=${scan.instance.idInstance}`)).map((r) => verified(r, scan.secret));
    expect(qrHooks.some((h) => h.type === "qr.updated")).toBe(true);
  });

  it("paces provider calls of one instance across both daemons' connections", async () => {
    const idInstance = newIdInstance();
    const log = createLogger({ level: "silent" });
    const limiters = daemons.map((d) =>
      providerPace({ redis: d.ctx.queues.connection, prefix: d.ctx.queues.prefix, log, instanceIntervalMs: 400, hostRps: 50 }, sim.url, idInstance)!,
    );
    const times: number[] = [];
    for (let i = 0; i < 4; i++) {
      await limiters[i % 2]!.acquire("getStateInstance");
      times.push(Date.now());
    }
    // Redis's clock spaces the slots; the local clock may read a few ms short of it.
    for (let i = 1; i < times.length; i++) expect(times[i]! - times[i - 1]!).toBeGreaterThanOrEqual(380);
    const keys = (await cluster.keysByNode()).flat();
    expect(keys).toContain(`${prefix()}pace:instance:${new URL(sim.url).host}:${idInstance}:getStateInstance`);
    expect(keys).toContain(`${prefix()}pace:host:${new URL(sim.url).host}`);
  });

  it("broadcasts a cancel over the cluster to the daemon holding the session, which closes its socket", async () => {
    // One QR every 4 s: without the broadcast the run would only notice at its next QR.
    const { instance, session } = await startSession({ fate: "never", rotationMs: 4000, scanWindowMs: 20_000 }, daemons[0]!);
    await waitFor("the first QR", async () => sim.currentQr(instance.idInstance));
    expect((await cancelSession(daemons[1]!.ctx, session.id)).status).toBe("cancelled");
    await waitFor("the socket to close before the next QR", async () => sim.openSockets() === 0, 2_000, 20);
  });

  it("keeps every key under the hash-tagged prefix, so each script's keys share one slot", async () => {
    const byNode = await cluster.keysByNode();
    const keys = byNode.flat();
    expect(keys.length).toBeGreaterThan(0);
    for (const key of keys) expect(key.startsWith(prefix()), key).toBe(true);
    expect(keys.some((k) => k.startsWith(`${prefix()}qr-session:`))).toBe(true);
    expect(keys.some((k) => k.startsWith(`${prefix()}notify:`))).toBe(true);
    // One hash tag is one slot: every key lives on the node that owns it.
    expect(byNode.filter((node) => node.length > 0)).toHaveLength(1);
  });

  it("reports Redis ready, queue depths and the queue board from the cluster", async () => {
    const ready = await fetch(`${daemons[1]!.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({ checks: { redis: "ok" } });
    const metrics = await (await fetch(`${daemons[1]!.url}/metrics`)).text();
    // The sweep and retention schedules wait as delayed jobs.
    expect(metrics).toMatch(/^qrfleet_queue_jobs\{queue="sweep",state="delayed"\} [1-9]/m);
    const basic = `Basic ${Buffer.from(`admin:${daemons[1]!.ctx.config.QRFLEET_ADMIN_TOKEN}`).toString("base64")}`;
    const board = await fetch(`${daemons[1]!.url}/admin/queues/api/queues`, { headers: { authorization: basic } });
    expect(board.status).toBe(200);
    const listed = ((await board.json()) as { queues: Array<{ name: string; counts: Record<string, number> }> }).queues;
    expect(listed.find((q) => q.name === "qr-session")?.counts.completed).toBeGreaterThan(0);
  });
});
