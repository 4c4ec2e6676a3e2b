import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { enableChannel, retryDelivery, retryFailedDeliveries } from "../../src/fleet/operators/deliveries.js";
import { ChannelHealth } from "../../src/notify/channel-health.js";
import { sendDelivery } from "../../src/notify/deliver.js";
import { createMailer, type Mailer } from "../../src/notify/email.js";
import { testFleet, waitFor } from "../support/fleet.js";
import { startReceiver, type Receiver } from "../support/receiver.js";
import { startSmtp, type TestSmtp } from "../support/smtp.js";
import { cleanupOperators, deps, makeInstance, makeOperator, makeSession, record, silent, uid } from "./fixtures.js";

const ctx = testFleet({});
const db = ctx.db;
const operators: string[] = [];
let receiver: Receiver;
let smtp: TestSmtp;
let mailer: Mailer;

beforeAll(async () => {
  receiver = await startReceiver();
  smtp = await startSmtp();
  mailer = createMailer(smtp.url, "qrfleet <qrfleet@example.test>");
});
afterAll(async () => {
  await cleanupOperators(db, operators);
  await Promise.all([receiver.close(), smtp.close(), mailer.close()]);
  await ctx.close();
});

const healthOf = (disableAfterMs = 3_600_000) => new ChannelHealth({ sql: ctx.sql, mailer, log: silent, disableAfterMs });

/** An instance with a running session, and one operator with a webhook (this test's path) and an email address. */
async function scene() {
  const { instance } = await makeInstance(db);
  const session = await makeSession(db, instance.id);
  const email = `${uid("ops")}@example.test`;
  const added = await makeOperator(db, instance.id, { webhook: `${receiver.url}/${instance.id}`, email });
  operators.push(added.operator.id);
  const webhook = added.operator.channels.find((c) => c.kind === "webhook")!;
  const requests = () => receiver.requests.filter((r) => r.path.endsWith(instance.id));
  const mails = () => smtp.messages.filter((m) => m.to.includes(email));
  /** An event only webhooks get (email is for a human who must act), so each is one webhook delivery. */
  const event = async () => (await record(db, { type: "session.authorized", instanceId: instance.id, sessionId: session.id, attempt: 1, data: {} }))[0];
  return { instance, webhook, email, requests, mails, event };
}

const channelRow = (id: string) => db.channel.findUniqueOrThrow({ where: { id } });
const deliveryRow = (id: string) => db.delivery.findUniqueOrThrow({ where: { id } });

describe("a receiver's Retry-After", () => {
  it("sets the next try's time on a 429, and no try goes before it", async () => {
    const s = await scene();
    receiver.route((r) => (r.path.endsWith(s.instance.id) && s.requests().length === 1 ? { status: 429, headers: { "retry-after": "2" } } : undefined));
    const id = (await s.event())!;
    const now = new Date();
    const d = deps(db, mailer, { health: healthOf() });
    expect(await sendDelivery(d, id, now)).toEqual({ status: "retry", retryInMs: 2000 });
    expect((await deliveryRow(id)).nextTryAt.getTime()).toBe(now.getTime() + 2000);
    // The schedule alone (5 s × 0.001) would have tried again at once; the run a second early sends nothing.
    expect(await sendDelivery(d, id, new Date(now.getTime() + 900))).toMatchObject({ status: "retry" });
    expect(s.requests()).toHaveLength(1);
    expect(await sendDelivery(d, id, new Date(now.getTime() + 2000))).toEqual({ status: "sent" });
    expect(s.requests()).toHaveLength(2);
    receiver.route(null);
  });

  it("reads an HTTP date on a 503, bounds a huge wait, and ignores garbage", async () => {
    const s = await scene();
    const id = (await s.event())!;
    // A whole second (an HTTP date has no finer grain), not before the delivery was due.
    const now = new Date(Math.ceil(Date.now() / 1000) * 1000);
    const answers = [
      { status: 503, headers: { "retry-after": new Date(now.getTime() + 4000).toUTCString() } },
      { status: 429, headers: { "retry-after": "86400" } },
      { status: 429, headers: { "retry-after": "in a while" } },
    ];
    receiver.route((r) => (r.path.endsWith(s.instance.id) ? answers.shift() : undefined));
    const d = deps(db, mailer, { retry: { multiplier: 0.001, retryAfterMaxMs: 3000 } });
    expect(await sendDelivery(d, id, now)).toEqual({ status: "retry", retryInMs: 3000 });
    expect(await sendDelivery(d, id, new Date(now.getTime() + 3000))).toEqual({ status: "retry", retryInMs: 3000 });
    // Garbage: the schedule's own wait after a third try (30 min × 0.001).
    expect(await sendDelivery(d, id, new Date(now.getTime() + 6000))).toEqual({ status: "retry", retryInMs: 1800 });
    receiver.route(null);
  });
});

describe("a receiver that answers 410 Gone", () => {
  it("disables the channel: its pending deliveries stop, nothing new is routed to it, and its operator is emailed once", async () => {
    const s = await scene();
    const [first, waiting] = [(await s.event())!, (await s.event())!];
    receiver.route((r) => (r.path.endsWith(s.instance.id) ? { status: 410, body: "gone" } : undefined));
    const health = healthOf();
    expect(await sendDelivery(deps(db, mailer, { health }), first)).toEqual({ status: "failed" });
    receiver.route(null);

    const channel = await channelRow(s.webhook.id);
    expect(channel).toMatchObject({ enabled: false, disabledReason: expect.stringContaining("410 Gone") });
    expect(channel.disabledAt).toBeInstanceOf(Date);
    expect(await deliveryRow(first)).toMatchObject({ status: "failed", responseStatus: 410 });
    expect(await deliveryRow(waiting)).toMatchObject({ status: "failed", lastError: expect.stringContaining("the channel was disabled") });
    expect(await sendDelivery(deps(db, mailer, { health }), waiting)).toEqual({ status: "noop" });
    expect(await s.event()).toBeUndefined();
    expect(s.requests()).toHaveLength(1);

    const mail = await smtp.waitFor((m) => m.to.includes(s.email));
    expect(mail.parsed.subject).toContain("stopped sending");
    expect(mail.parsed.text).toContain(`enable-channel ${s.webhook.id}`);
    expect(await health.disable(s.webhook.id, "again")).toBe(false);
    expect(s.mails()).toHaveLength(1);
  });

  it("is enabled again by an admin, and then gets new events", async () => {
    const s = await scene();
    await healthOf().disable(s.webhook.id, "the endpoint answered 410 Gone");
    expect(await s.event()).toBeUndefined();
    expect(await enableChannel(ctx, s.webhook.id)).toEqual({ id: s.webhook.id, wasDisabled: true });
    expect(await channelRow(s.webhook.id)).toMatchObject({ enabled: true, disabledReason: null, disabledAt: null, failingSince: null });
    const id = (await s.event())!;
    expect(await sendDelivery(deps(db, mailer), id)).toEqual({ status: "sent" });
    await expect(enableChannel(ctx, "not-a-uuid")).rejects.toMatchObject({ code: "invalid_input" });
  });
});

describe("a channel that keeps failing", () => {
  it("is marked failing, and a success clears it", async () => {
    const s = await scene();
    const health = healthOf();
    receiver.route((r) => (r.path.endsWith(s.instance.id) ? { status: 500 } : undefined));
    await sendDelivery(deps(db, mailer, { health }), (await s.event())!);
    expect((await channelRow(s.webhook.id)).failingSince).toBeInstanceOf(Date);
    receiver.route(null);
    await sendDelivery(deps(db, mailer, { health }), (await s.event())!);
    expect((await channelRow(s.webhook.id)).failingSince).toBeNull();
  });

  it("is disabled once it has failed for the configured time, and its operator gets one email from two daemons", async () => {
    const s = await scene();
    const daemons = [healthOf(400), healthOf(400)];
    receiver.route((r) => (r.path.endsWith(s.instance.id) ? { status: 500 } : undefined));
    let turn = 0;
    await waitFor("the failing channel to be disabled", async () => {
      const id = await s.event();
      if (id) await sendDelivery(deps(db, mailer, { health: daemons[turn++ % 2]! }), id);
      return !(await channelRow(s.webhook.id)).enabled;
    }, 15_000, 50);
    receiver.route(null);
    const channel = await channelRow(s.webhook.id);
    expect(channel.disabledReason).toMatch(/every try failed since/);
    expect(channel.disabledAt!.getTime() - channel.failingSince!.getTime()).toBeGreaterThanOrEqual(400);
    await smtp.waitFor((m) => m.to.includes(s.email));
    expect(await daemons[1]!.disable(s.webhook.id, "again")).toBe(false);
    expect(s.mails()).toHaveLength(1);
  });
});

describe("replaying deliveries by hand", () => {
  it("sends a failed delivery again with the same webhook-id, once however many ask at once", async () => {
    const s = await scene();
    receiver.route((r) => (r.path.endsWith(s.instance.id) ? { status: 400 } : undefined));
    const id = (await s.event())!;
    expect(await sendDelivery(deps(db, mailer), id)).toEqual({ status: "failed" });
    receiver.route(null);

    const replays = await Promise.allSettled([retryDelivery(ctx, id), retryDelivery(ctx, id)]);
    expect(replays.filter((r) => r.status === "fulfilled")).toHaveLength(1);
    expect(replays.find((r) => r.status === "rejected")).toMatchObject({ reason: { code: "conflict" } });
    expect(await deliveryRow(id)).toMatchObject({ status: "pending", tries: 0, lastError: null });
    const jobs = await ctx.queues.notify.getJobs(["waiting", "delayed", "prioritized"]);
    expect(jobs.filter((j) => j.data.deliveryId === id)).toHaveLength(1);

    expect(await sendDelivery(deps(db, mailer), id)).toEqual({ status: "sent" });
    const [before, after] = s.requests();
    expect(after!.headers["webhook-id"]).toBe(before!.headers["webhook-id"]);
    expect(after!.headers["webhook-id"]).toBe(`msg_${id}`);
    await expect(retryDelivery(ctx, "00000000-0000-4000-8000-000000000000")).rejects.toMatchObject({ code: "not_found" });
  });

  it("replays every failed delivery of one channel, not another's nor a disabled channel's", async () => {
    const [a, b] = [await scene(), await scene()];
    receiver.route((r) => (r.path.endsWith(a.instance.id) || r.path.endsWith(b.instance.id) ? { status: 400 } : undefined));
    const [a1, a2, b1] = [(await a.event())!, (await a.event())!, (await b.event())!];
    for (const id of [a1, a2, b1]) await sendDelivery(deps(db, mailer), id);
    receiver.route(null);

    const since = new Date(Date.now() - 60_000).toISOString();
    const replay = await retryFailedDeliveries(ctx, { channel: a.webhook.id, since });
    expect(replay.replayed.sort()).toEqual([a1, a2].sort());
    expect(await deliveryRow(b1)).toMatchObject({ status: "failed" });

    await healthOf().disable(b.webhook.id, "the endpoint answered 410 Gone");
    expect((await retryFailedDeliveries(ctx, { channel: b.webhook.id })).replayed).toEqual([]);
    await expect(retryDelivery(ctx, b1)).rejects.toMatchObject({ code: "conflict" });
    await expect(retryFailedDeliveries(ctx, { since: "yesterday-ish" })).rejects.toMatchObject({ code: "invalid_input" });
  });
});
