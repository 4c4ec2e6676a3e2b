import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import type { DeliveryView } from "../../src/fleet/operators/deliveries.js";
import type { InstanceView } from "../../src/fleet/instances/instances.js";
import type { AddedOperator, Assignment, ChannelView, OperatorView } from "../../src/fleet/operators/operators.js";
import type { SessionView } from "../../src/fleet/sessions/sessions.js";
import { recordEvent } from "../../src/notify/outbox.js";
import { testDb } from "../support/db.js";
import { newIdInstance, newToken } from "../support/fleet.js";
import { cliRunner } from "./run.js";

const qrfleet = cliRunner();
const uniqueName = () => `ops-${randomBytes(4).toString("hex")}`;

describe("qrfleet operator, assign, unassign, deliveries", { timeout: 120_000 }, () => {
  it("prints a generated webhook secret once, with a note to store it", async () => {
    const name = uniqueName();
    const r = await qrfleet(["operator", "add", "--name", name, "--email", `${name}@example.com`, "--webhook", "https://hooks.example.com/qr"]);
    expect(r.code).toBe(0);
    const secret = /webhook signing secret: (whsec_\S+)/.exec(r.stdout)?.[1];
    expect(secret).toBeDefined();
    expect(r.stdout).toContain("store it now");
    const [shown, listed] = await Promise.all([qrfleet(["operator", "show", name]), qrfleet(["operator", "list"])]);
    // With no instance of its own the operator hears of the whole fleet: its email starts in digest mode.
    expect(shown.stdout).toContain(`email ${name}@example.com digest (default), webhook https://hooks.example.com/qr immediate (default)`);
    expect(listed.stdout).toContain(name);
    expect(shown.stdout + listed.stdout).not.toContain(secret!);
  });

  it("adds a channel to an operator, printing a generated secret once, and wants exactly one of --email and --webhook", async () => {
    const name = uniqueName();
    await qrfleet.json(["operator", "add", "--name", name, "--email", `${name}@example.com`]);
    const r = await qrfleet(["operator", "add-channel", name, "--webhook", "https://hooks.example.com/second"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/added webhook https:\/\/hooks\.example\.com\/second to operator ops-\w+\nwebhook signing secret: whsec_/);
    const shown = await qrfleet.json<OperatorView>(["operator", "show", name]);
    expect(shown.channels.map((c) => c.kind).sort()).toEqual(["email", "webhook"]);
    const [both, neither] = await Promise.all([
      qrfleet(["operator", "add-channel", name, "--email", "a@example.com", "--webhook", "https://hooks.example.com/x"]),
      qrfleet(["operator", "add-channel", name]),
    ]);
    for (const bad of [both, neither]) {
      expect(bad.code).toBe(2);
      expect(bad.stderr).toContain("give exactly one of --email and --webhook");
    }
  });

  it("assigns an instance by idInstance to an operator by name, changes the tier, unassigns, removes", async () => {
    const inst = await qrfleet.json<InstanceView>(["instance", "add", "--api-url", "https://7103.api.greenapi.com", "--id", newIdInstance(), "--token", newToken()]);
    const name = uniqueName();
    const added = await qrfleet.json<AddedOperator>(["operator", "add", "--name", name, "--email", `${name}@example.com`]);
    expect(added).toMatchObject({ webhookSecret: null, operator: { name, channels: [{ kind: "email" }] } });

    const a = await qrfleet.json<Assignment>(["assign", inst.idInstance, name]);
    expect(a).toEqual({ instanceId: inst.id, operatorId: added.operator.id, tier: 1 });
    const retiered = await qrfleet(["assign", inst.idInstance, added.operator.id, "--tier", "2"]);
    expect(retiered.stdout.trim()).toBe(`assigned instance ${inst.idInstance} to operator ${added.operator.id} (tier 2)`);
    const shown = await qrfleet.json<OperatorView>(["operator", "show", name]);
    expect(shown.assignments).toEqual([{ instanceId: inst.id, tier: 2 }]);

    const badTier = await qrfleet(["assign", inst.idInstance, name, "--tier", "99"]);
    expect(badTier.code).toBe(2);

    const un = await qrfleet(["unassign", inst.idInstance, name]);
    expect(un.stdout.trim()).toBe(`unassigned instance ${inst.idInstance} from operator ${name} (tier 2)`);
    const unAgain = await qrfleet(["unassign", inst.idInstance, name]);
    expect(unAgain.code).toBe(1);
    expect(unAgain.stderr).toMatch(/^qrfleet: instance .* is not assigned to operator/);

    expect((await qrfleet(["operator", "remove", name])).stdout.trim()).toBe(`removed operator ${name} (${added.operator.id})`);
    expect((await qrfleet(["operator", "show", name])).code).toBe(1);
  });

  it("sets a channel's delivery mode, shows it, goes back to the default, and refuses a mode it does not know", async () => {
    const name = uniqueName();
    const added = await qrfleet.json<{ operator: OperatorView }>(["operator", "add", "--name", name, "--email", `${name}@example.com`]);
    const email = added.operator.channels[0]!.id;
    const set = await qrfleet(["operator", "channel-mode", email, "immediate"]);
    expect(set.code, set.stderr).toBe(0);
    expect(set.stdout).toBe(`channel ${email} (email ${name}@example.com): immediate\n`);
    const shown = await qrfleet(["operator", "show", name]);
    expect(shown.stdout).toContain(`email ${name}@example.com immediate`);
    const back = await qrfleet.json<ChannelView>(["operator", "channel-mode", email, "default"]);
    expect([back.mode, back.modeSet]).toEqual(["digest", false]);
    const [bad, unknown] = await Promise.all([
      qrfleet(["operator", "channel-mode", email, "hourly"]),
      qrfleet(["operator", "channel-mode", "0b6c2a52-7a1e-4a57-9d61-000000000000", "digest"]),
    ]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain("mode: must be one of immediate, digest, default");
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('no channel "0b6c2a52-7a1e-4a57-9d61-000000000000"');
  });

  it("refuses an operator without a channel (exit 1) and lists deliveries with filters", async () => {
    const [noChannel, deliveries, badStatus, badSession] = await Promise.all([
      qrfleet(["operator", "add", "--name", uniqueName()]),
      qrfleet.json<DeliveryView[]>(["deliveries", "--status", "failed", "--limit", "5"]),
      qrfleet(["deliveries", "--status", "lost"]),
      qrfleet(["deliveries", "--session", "nope"]),
    ]);
    expect(noChannel.code).toBe(1);
    expect(noChannel.stderr).toContain("give an email, a webhook or both");
    expect(Array.isArray(deliveries)).toBe(true);
    expect(deliveries.every((d) => d.status === "failed")).toBe(true);
    expect(badStatus.code).toBe(1);
    expect(badStatus.stderr).toContain("status: must be one of pending, sent, failed, expired");
    expect(badSession.stderr).toContain("session: must be a session id");
  });

  it("shows what went where and why it failed", async () => {
    const inst = await qrfleet.json<InstanceView>(["instance", "add", "--api-url", "https://7103.api.greenapi.com", "--id", newIdInstance(), "--token", newToken()]);
    const name = uniqueName();
    await qrfleet.json(["operator", "add", "--name", name, "--email", `${name}@example.com`, "--webhook", "https://hooks.example.com/qr"]);
    await qrfleet.json(["assign", inst.idInstance, name]);
    const { session } = await qrfleet.json<{ session: SessionView }>(["enqueue", inst.idInstance]);
    // An outcome event as a worker records it: one delivery per channel of the assigned operator.
    const db = testDb();
    try {
      const ids = await db.$transaction((tx) =>
        recordEvent(tx, { type: "session.failed", instanceId: inst.id, sessionId: session.id, attempt: 1, data: {} }, { escalateAfter: 2 }),
      );
      expect(ids).toHaveLength(2);
      await db.delivery.updateMany({
        where: { id: { in: ids }, channel: { kind: "webhook" } },
        data: { status: "failed", tries: 8, lastError: "HTTP 500 from the receiver", responseStatus: 500 },
      });
    } finally {
      await db.$disconnect();
    }
    const all = await qrfleet.json<DeliveryView[]>(["deliveries", "--session", session.id]);
    expect(all.map((d) => d.channelKind).sort()).toEqual(["email", "webhook"]);
    const failed = await qrfleet(["deliveries", "--session", session.id, "--status", "failed"]);
    expect(failed.stdout).toMatch(/session\.failed\s+webhook https:\/\/hooks\.example\.com\/qr\s+failed\s+8\s+500\s+-\s+HTTP 500 from the receiver/);
    expect(failed.stdout).not.toContain("email");
  });
});
