import { afterAll, describe, expect, it } from "vitest";
import type { ReplayView } from "../../src/fleet/operators/deliveries.js";
import { testDb } from "../support/db.js";
import { makeInstance, makeOperator, makeSession, record } from "../notify/fixtures.js";
import { cliRunner } from "./run.js";

const qrfleet = cliRunner();
const db = testDb();
afterAll(() => db.$disconnect());

/** A webhook channel with one delivery that failed, and the channel disabled as a 410 leaves it. */
async function failedDelivery() {
  const { instance } = await makeInstance(db);
  const session = await makeSession(db, instance.id);
  const added = await makeOperator(db, instance.id, { webhook: "https://hooks.example.com/gone" });
  const [id] = await record(db, { type: "session.authorized", instanceId: instance.id, sessionId: session.id, attempt: 1, data: {} });
  await db.delivery.update({ where: { id: id! }, data: { status: "failed", tries: 3, lastError: "webhook answered 410 Gone", responseStatus: 410 } });
  const channelId = added.operator.channels[0]!.id;
  await db.channel.update({ where: { id: channelId }, data: { enabled: false, disabledReason: "the endpoint answered 410 Gone", disabledAt: new Date() } });
  return { deliveryId: id!, channelId, operator: added.operator.name };
}

describe("qrfleet deliveries retry and operator enable-channel", { timeout: 120_000 }, () => {
  it("shows why a channel is disabled, enables it, and replays its failed delivery with tries reset", async () => {
    const s = await failedDelivery();
    const [shown, refused, usage] = await Promise.all([
      qrfleet(["operator", "show", s.operator]),
      qrfleet(["deliveries", "retry", s.deliveryId]),
      qrfleet(["deliveries", "retry"]),
    ]);
    expect(shown.stdout).toContain("(disabled: the endpoint answered 410 Gone)");
    expect(shown.stdout).toContain(`webhook ${s.channelId}`);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain("enable it first");
    expect(usage.code).toBe(2);

    const enabled = await qrfleet(["operator", "enable-channel", s.channelId]);
    expect(enabled.stdout).toContain(`enabled channel ${s.channelId}`);
    expect(await db.channel.findUniqueOrThrow({ where: { id: s.channelId } })).toMatchObject({ enabled: true, disabledReason: null });

    // `deliveries` has a --json of its own: the subcommand still prints JSON.
    const replay = await qrfleet.json<ReplayView>(["deliveries", "retry", "--failed", "--channel", s.channelId]);
    expect(replay).toEqual({ replayed: [s.deliveryId], more: false });
    expect(await db.delivery.findUniqueOrThrow({ where: { id: s.deliveryId } })).toMatchObject({ status: "pending", tries: 0, lastError: null });
  });
});
