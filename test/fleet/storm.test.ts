import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { addInstance } from "../../src/fleet/instances/instances.js";
import { checkStorm, holdBusyChannels, stormThreshold } from "../../src/fleet/instances/storm.js";
import { addOperator, assign, setChannelMode } from "../../src/fleet/operators/operators.js";
import { enqueueSession } from "../../src/fleet/sessions/sessions.js";
import { cutDigests } from "../../src/notify/digests.js";
import { recordEvent } from "../../src/notify/outbox.js";
import { newIdInstance, newToken, testFleet } from "../support/fleet.js";

/**
 * Storm control against the database: a mass logout raises one incident to the fleet-wide
 * operators whichever daemons look, turns the channels that would be flooded to digests (not the
 * operator of one instance, not a webhook), and ends once, with one recovery, when it calms down.
 */

let ctx: ReturnType<typeof testFleet>;
const instances: string[] = [];
let fleetEmail: string, fleetHook: string, nightEmail: string, deskEmail: string, regionEmail: string;

beforeAll(async () => {
  ctx = testFleet({
    QRFLEET_STORM_WINDOW_MS: "60000", QRFLEET_STORM_MIN_LOGOUTS: "5", QRFLEET_STORM_SHARE_PERCENT: "10",
    QRFLEET_STORM_CHANNEL_PER_MINUTE: "3", QRFLEET_PUBLIC_URL: "https://qr.example.test",
  });
  for (let i = 0; i < 30; i++) {
    instances.push((await addInstance(ctx, { apiUrl: "http://127.0.0.1:9", idInstance: newIdInstance(), token: newToken() })).id);
  }
  const fleet = await addOperator(ctx, { name: "fleet", email: "fleet@example.test", webhook: "https://hooks.example.test/fleet" });
  fleetEmail = fleet.operator.channels.find((c) => c.kind === "email")!.id;
  fleetHook = fleet.operator.channels.find((c) => c.kind === "webhook")!.id;
  // Chosen immediate by an admin: the storm is what makes it a digest.
  await setChannelMode(ctx, fleetEmail, "immediate");
  // Fleet-wide too, in digest mode as such an email starts: the storm has nothing to switch.
  nightEmail = (await addOperator(ctx, { name: "night", email: "night@example.test" })).operator.channels[0]!.id;
  deskEmail = (await addOperator(ctx, { name: "desk", email: "desk@example.test" })).operator.channels[0]!.id;
  await assign(ctx, instances[0]!, "desk");
  regionEmail = (await addOperator(ctx, { name: "region", email: "region@example.test" })).operator.channels[0]!.id;
  for (const id of instances.slice(1, 9)) await assign(ctx, id, "region");
});
afterAll(async () => {
  await ctx?.close();
});

const logOut = (ids: readonly string[]) => Promise.all(ids.map((id) => enqueueSession(ctx, id, "sweep")));
const eventsOf = (type: string) => ctx.db.event.findMany({ where: { type }, include: { deliveries: true } });
const heldChannels = async () =>
  (await ctx.db.channel.findMany({ where: { stormHeldSince: { not: null } }, select: { id: true } })).map((c) => c.id).sort();

function alertOf(instanceId: string): Promise<string[]> {
  return ctx.db.$transaction((tx) =>
    recordEvent(tx, { type: "instance.alert", instanceId, sessionId: null, attempt: null, everyTier: true, data: { state: "blocked" } }, { escalateAfter: 1 }),
  );
}

describe("storm control", () => {
  it("takes the larger of the count and the share of the enabled fleet as its threshold", () => {
    expect(stormThreshold(30, 5, 10)).toBe(5);
    expect(stormThreshold(600, 20, 1)).toBe(20);
    expect(stormThreshold(100_000, 20, 1)).toBe(1000);
  });

  it("stays calm at the threshold, and an admin's sessions do not count", async () => {
    expect(await checkStorm(ctx)).toEqual({ state: "calm", count: 0, threshold: 5 });
    await Promise.all(instances.slice(20, 26).map((id) => enqueueSession(ctx, id, "admin")));
    await logOut(instances.slice(9, 14));
    expect(await checkStorm(ctx)).toEqual({ state: "calm", count: 5, threshold: 5 });
    expect(await eventsOf("fleet.incident")).toEqual([]);
  });

  it("raises one incident to the fleet-wide operators when four daemons look at once, and holds the flooded channels", async () => {
    await logOut(instances.slice(0, 9));
    const looks = await Promise.all([1, 2, 3, 4].map(() => checkStorm(ctx)));
    expect(looks.map((l) => l.state).sort()).toEqual(["ongoing", "ongoing", "ongoing", "raised"]);
    expect(looks.every((l) => l.count === 14)).toBe(true);

    const [incident] = await eventsOf("fleet.incident");
    expect(incident).toMatchObject({ instanceId: null, payload: { count: 14, threshold: 5, enabledInstances: 30, windowMs: 60_000 } });
    expect(incident!.deliveries.map((d) => d.channelId).sort()).toEqual([fleetEmail, fleetHook, nightEmail].sort());
    expect(incident!.deliveries.every((d) => d.status === "pending")).toBe(true);
    const link = new URL(String((incident!.payload as Record<string, unknown>).dashboardUrl));
    expect(link.origin + link.pathname).toBe("https://qr.example.test/admin");
    expect(Date.parse(link.searchParams.get("unlinked_since")!)).toBeLessThan(Date.now());
    expect(await ctx.db.fleetIncident.count({ where: { open: true } })).toBe(1);

    // Told of more than 3 instances' new sessions in the last minute: the fleet-wide operator (11 unassigned,
    // admin sessions too) and region (8 of its own); desk has 1; the webhook is read by a machine; night's
    // email gets digests already, so no digest of it says the storm made it one.
    expect(await heldChannels()).toEqual([fleetEmail, regionEmail].sort());
  });

  it("follows the incident without raising it again, and the held channels' messages wait for a digest that says why", async () => {
    expect((await checkStorm(ctx)).state).toBe("ongoing");
    expect(await eventsOf("fleet.incident")).toHaveLength(1);
    const regionAlert = await alertOf(instances[1]!);
    const deskAlert = await alertOf(instances[0]!);
    const status = async (channelId: string) =>
      (await ctx.db.delivery.findFirstOrThrow({ where: { channelId, event: { type: "instance.alert" } }, orderBy: { createdAt: "desc" } })).status;
    expect(await status(regionEmail)).toBe("held");
    expect(await status(deskEmail)).toBe("pending");
    expect(regionAlert).toEqual([]);
    expect(deskAlert).toHaveLength(1);

    await new Promise((r) => setTimeout(r, 150));
    const cut = await cutDigests(ctx.sql, { windowMs: 100, intervalMs: 100 });
    const regionDigest = cut.find((c) => c.channelId === regionEmail)!;
    const digest = await ctx.db.delivery.findUniqueOrThrow({ where: { id: regionDigest.id }, include: { event: true } });
    expect(digest.event.payload).toMatchObject({ storm: true });
  });

  it("ends once, with one recovery and every channel back to its own mode, when the logouts fall under the threshold", async () => {
    await ctx.db.qrSession.updateMany({ data: { createdAt: new Date(Date.now() - 3_600_000) } });
    const looks = await Promise.all([1, 2, 3].map(() => checkStorm(ctx)));
    expect(looks.filter((l) => l.state === "ended")).toHaveLength(1);
    const recovered = await eventsOf("fleet.recovered");
    expect(recovered).toHaveLength(1);
    expect(recovered[0]!.payload).toMatchObject({ count: 0, threshold: 5, peak: 14 });
    expect(recovered[0]!.deliveries.map((d) => d.channelId).sort()).toEqual([fleetEmail, fleetHook, nightEmail].sort());
    expect(await heldChannels()).toEqual([]);
    expect(await ctx.db.fleetIncident.findMany({ select: { open: true, peak: true } })).toEqual([{ open: false, peak: 14 }]);
    expect((await checkStorm(ctx)).state).toBe("calm");
    // A daemon that saw the incident going on, writing after another ended it, holds nothing.
    await logOut(instances.slice(14, 20));
    await holdBusyChannels(ctx);
    expect(await heldChannels()).toEqual([]);
  });
});
