import { describe, expect, it } from "vitest";
import type { InstanceView } from "../../src/fleet/instances/instances.js";
import type { SessionView } from "../../src/fleet/sessions/sessions.js";
import type { FleetStatus } from "../../src/fleet/observe/status.js";
import { testDb } from "../support/db.js";
import { newIdInstance, newToken } from "../support/fleet.js";
import { cliRunner, noStack } from "./run.js";

const qrfleet = cliRunner();
const API = "https://7103.api.greenapi.com";

async function addInstance(): Promise<InstanceView> {
  return qrfleet.json<InstanceView>(["instance", "add", "--api-url", API, "--id", newIdInstance(), "--token", newToken(), "--max-attempts", "4"]);
}

describe("qrfleet enqueue, sessions, session show, cancel, status", { timeout: 120_000 }, () => {
  it("enqueue prints the session id at once; enqueued again, the same open session", async () => {
    const inst = await addInstance();
    const first = await qrfleet(["enqueue", inst.idInstance]);
    expect(first.code).toBe(0);
    const [id, note] = first.stdout.trim().split("\n");
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    expect(note).toBe(`new session queued for instance ${inst.idInstance}`);

    const again = await qrfleet.json<{ session: SessionView; created: boolean }>(["enqueue", inst.idInstance]);
    expect(again).toMatchObject({ created: false, session: { id, status: "queued", attempt: 1, maxAttempts: 4, trigger: "admin" } });
    const text = await qrfleet(["enqueue", inst.id]);
    expect(text.stdout).toContain(`${id}\ninstance ${inst.idInstance} already has this session open (queued, attempt 1/4)`);
  });

  it("enqueue --all-unlinked starts one session per enabled, logged-out or unchecked instance, none twice", async () => {
    const six = await Promise.all([1, 2, 3, 4, 5, 6].map(() => addInstance()));
    const [unchecked, loggedOut, alreadyOpen, linked, disabled, flagged] = six as [InstanceView, InstanceView, InstanceView, InstanceView, InstanceView, InstanceView];
    const db = testDb();
    try {
      await db.instance.update({ where: { id: loggedOut.id }, data: { lastState: "notAuthorized" } });
      await db.instance.update({ where: { id: linked.id }, data: { lastState: "authorized" } });
      await db.instance.update({ where: { id: disabled.id }, data: { enabled: false } });
      await db.instance.update({ where: { id: flagged.id }, data: { attention: "invalid_token" } });
      const { session: open } = await qrfleet.json<{ session: SessionView }>(["enqueue", alreadyOpen.idInstance]);

      const first = await qrfleet.json<{ created: number; alreadyOpen: number }>(["enqueue", "--all-unlinked"]);
      expect(first.created).toBeGreaterThanOrEqual(2);
      const sessionsOf = async (inst: InstanceView) => db.qrSession.findMany({ where: { instanceId: inst.id } });
      for (const inst of [unchecked, loggedOut]) expect((await sessionsOf(inst)).map((s) => [s.status, s.trigger])).toEqual([["queued", "admin"]]);
      expect((await sessionsOf(alreadyOpen)).map((s) => s.id)).toEqual([open.id]);
      for (const inst of [linked, disabled, flagged]) expect(await sessionsOf(inst)).toEqual([]);

      const again = await qrfleet(["enqueue", "--all-unlinked"]);
      expect(again.code).toBe(0);
      expect(again.stdout).toMatch(/^0 sessions queued; \d+ instances already had one open\n$/);
      expect(Number(/; (\d+) instances/.exec(again.stdout)![1])).toBe(first.created + first.alreadyOpen);
    } finally {
      await db.$disconnect();
    }
    const both = await qrfleet(["enqueue", unchecked.idInstance, "--all-unlinked"]);
    const neither = await qrfleet(["enqueue"]);
    for (const r of [both, neither]) expect(r).toMatchObject({ code: 2, stderr: expect.stringContaining("give an instance or --all-unlinked") });
  });

  it("lists and shows sessions, cancels one, and cancelling again changes nothing", async () => {
    const inst = await addInstance();
    const { session } = await qrfleet.json<{ session: SessionView }>(["enqueue", inst.idInstance]);

    const [listed, table, shown] = await Promise.all([
      qrfleet.json<SessionView[]>(["sessions", "--instance", inst.idInstance, "--status", "queued"]),
      qrfleet(["sessions", "--instance", inst.idInstance, "--limit", "5"]),
      qrfleet(["session", "show", session.id]),
    ]);
    expect(listed.map((s) => s.id)).toEqual([session.id]);
    expect(table.stdout).toMatch(new RegExp(`${session.id}\\s+${inst.idInstance}\\s+admin\\s+queued\\s+1/4`));
    expect(shown.stdout).toMatch(/status:\s+queued/);
    expect(shown.stdout).toMatch(/attempt:\s+1\/4/);
    expect(shown.stdout).toMatch(/QR codes:\s+0/);

    const cancelled = await qrfleet(["cancel", session.id]);
    expect(cancelled.stdout.trim()).toBe(`session ${session.id} cancelled`);
    const after = await qrfleet.json<SessionView>(["session", "show", session.id]);
    expect(after).toMatchObject({ status: "cancelled", errorCode: "cancelled", endedAt: expect.any(String) });
    const twice = await qrfleet.json<SessionView>(["cancel", session.id]);
    expect(twice).toMatchObject({ status: "cancelled", endedAt: after.endedAt });

    const next = await qrfleet.json<{ session: SessionView; created: boolean }>(["enqueue", inst.idInstance]);
    expect(next.created).toBe(true);
    expect(next.session.id).not.toBe(session.id);
  });

  it("session show lists each attempt with its start, end, outcome and error", async () => {
    const inst = await addInstance();
    const { session } = await qrfleet.json<{ session: SessionView }>(["enqueue", inst.idInstance]);
    // Attempts as a worker records them: the first timed out with 5 QR codes, the second runs.
    const db = testDb();
    try {
      await db.qrAttempt.create({
        data: {
          sessionId: session.id, number: 1, startedAt: new Date("2026-01-02T03:04:05Z"), endedAt: new Date("2026-01-02T03:05:45Z"),
          outcome: "timed_out", errorCode: "timed_out", error: "the scan window passed with no scan", qrCount: 5,
        },
      });
      await db.qrAttempt.create({ data: { sessionId: session.id, number: 2, startedAt: new Date("2026-01-02T03:07:00Z"), resumes: 1 } });
      // A running attempt's QR codes are counted as they are stored (its qrCount is written when it ends).
      await db.qrCode.create({ data: { sessionId: session.id, attempt: 2, sequence: 6, png: new Uint8Array([1]), sha256: "f".repeat(64) } });
      await db.qrSession.update({ where: { id: session.id }, data: { attempt: 2, qrCount: 6, status: "running", startedAt: new Date("2026-01-02T03:04:05Z") } });
    } finally {
      await db.$disconnect();
    }
    const shown = await qrfleet(["session", "show", session.id]);
    expect(shown.stdout).toMatch(/attempt:\s+2\/4/);
    expect(shown.stdout).toMatch(/QR codes:\s+6/);
    expect(shown.stdout).toContain("  #1  2026-01-02 03:04:05Z → 2026-01-02 03:05:45Z  timed_out  5 QR — the scan window passed with no scan");
    expect(shown.stdout).toContain("  #2  2026-01-02 03:07:00Z → -  running  1 QR, resumed 1×");
    const json = await qrfleet.json<SessionView>(["session", "show", session.id]);
    expect(json.attempts?.map((a) => a.number)).toEqual([1, 2]);
    await qrfleet(["cancel", session.id]);
  });

  it("says what is wrong with a session id, a status filter or an unknown instance", async () => {
    const [noSession, badStatus, noInstance, badLimit] = await Promise.all([
      qrfleet(["session", "show", "not-a-session"]),
      qrfleet(["sessions", "--status", "sleeping"]),
      qrfleet(["enqueue", "9999999999"]),
      qrfleet(["sessions", "--limit", "0"]),
    ]);
    expect(noSession).toMatchObject({ code: 1, stderr: 'qrfleet: no session "not-a-session"\n' });
    expect(badStatus.code).toBe(1);
    expect(badStatus.stderr).toContain("status: must be one of queued, running");
    expect(noInstance).toMatchObject({ code: 1, stderr: 'qrfleet: no instance "9999999999"\n' });
    expect(badLimit.code).toBe(2);
    for (const r of [noSession, badStatus, noInstance, badLimit]) expect(noStack(r.stderr)).toBe(true);
  });

  it("status shows the fleet at a glance", async () => {
    await addInstance();
    const status = await qrfleet.json<FleetStatus>(["status"]);
    expect(status.instances.total).toBeGreaterThanOrEqual(1);
    expect(Object.keys(status.sessions)).toContain("cancelled");
    expect(status.queues).not.toBeNull();
    const text = await qrfleet(["status"]);
    // An aligned table carrying the same numbers as --json (and GET /api/status).
    const row = (name: string) => new RegExp(`^${name} +${"\\S+"}`, "m").exec(text.stdout)?.[0].split(/ {2,}/)[1];
    expect(row("instances")).toBe(String(status.instances.total));
    expect(row("attention")).toBe(String(status.instances.attention));
    expect(row("alerts open")).toBe(String(status.alertsOpen));
    expect(row("channels failing")).toBe(String(status.channels.failing));
    expect(row("sessions running")).toBe(String(status.sessions.running));
    expect(row("sessions queued")).toBe(String(status.sessions.queued));
    expect(text.stdout).toMatch(/^qr-session +/m);
  });
});
