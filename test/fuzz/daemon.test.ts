import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { addInstance } from "../../src/fleet/instances/instances.js";
import { addOperator, setChannelMode } from "../../src/fleet/operators/operators.js";
import { enqueueSession, showSession, type SessionView } from "../../src/fleet/sessions/sessions.js";
import type { Daemon } from "../../workers/daemon.js";
import { verified, type Hook } from "../e2e/support.js";
import { newIdInstance, newToken, startTestDaemon, waitFor } from "../support/fleet.js";
import { startReceiver, type Receiver } from "../support/receiver.js";
import { startSmtp, type TestSmtp } from "../support/smtp.js";
import { expectBounded, watch } from "./bounds.js";
import { bombs, goodPngs, goodQrFrame, runs } from "./hostile.js";
import { scriptOf, startHostileProvider, TERMINALS, type HostileProvider, type Script } from "./hostile-provider.js";

/**
 * Level 3: the real daemon path. Instances whose provider sends fuzzed sequences — hostile frames
 * mixed with good QR codes — run as sessions through the queue, PostgreSQL and a signed webhook
 * receiver. Every session must end with one recorded outcome, every stored QR must have been
 * announced or expired, and the daemon must stay healthy. The seed is fixed and printed on failure.
 */

const SEED = Number(process.env.FUZZ_SEED ?? 20261202);
const ENDED = ["authorized", "already_logged", "timed_out", "failed"];
const LIMITS = { maxDelayMs: 3_000, maxGrowthMb: 500 };

let good: Buffer[];
let provider: HostileProvider;
let receiver: Receiver;
let smtp: TestSmtp;
let d: Daemon;
let secret: string;

beforeAll(async () => {
  good = await goodPngs();
  [provider, receiver, smtp] = await Promise.all([startHostileProvider(good), startReceiver(), startSmtp()]);
  d = await startTestDaemon({
    SMTP_URL: smtp.url,
    QRFLEET_SESSION_ATTEMPTS: "1", QRFLEET_SILENCE_MS: "500", QRFLEET_ATTEMPT_MAX_MS: "6000", QRFLEET_QR_MIN_INTERVAL_MS: "50",
  });
  // An operator with no instances of its own is told about every instance.
  const added = await addOperator(d.ctx, { name: "fuzz-operator", webhook: `${receiver.url}/fuzz`, email: "fuzz@example.org" });
  // Each QR's email on its own (a fleet-wide operator's default is a digest): a bomb must never reach one.
  await setChannelMode(d.ctx, added.operator.channels.find((c) => c.kind === "email")!.id, "immediate");
  secret = added.webhookSecret!;
});
afterAll(async () => {
  await d?.close();
  await Promise.all([provider?.close(), receiver?.close(), smtp?.close()]);
});

/** A sampled script between good QR codes: the session has something to store whatever the fuzz sends. */
function mixed(script: Script, k: number): Script {
  const goodFrame = (n: number) => ({ kind: "frame" as const, data: goodQrFrame(good, n), good: true });
  return { ...script, steps: [goodFrame(k * 100), { kind: "wait", ms: 60 }, ...script.steps, { kind: "wait", ms: 60 }, goodFrame(k * 100 + 1)] };
}

describe("fuzz, level 3: hostile frames through the real daemon", () => {
  it("every session ends with one recorded outcome, its QR codes stored and announced, and the daemon healthy", async () => {
    const scripts = fc.sample(scriptOf(good, { maxSteps: 8, maxBurst: 300 }), { numRuns: runs(10), seed: SEED });
    const w = watch();
    const sessions: Array<{ id: string; script: Script }> = [];
    for (const [k, sampled] of scripts.entries()) {
      const script = mixed(sampled, k);
      const idInstance = newIdInstance();
      provider.define(idInstance, script);
      const instance = await addInstance(d.ctx, { apiUrl: provider.url, idInstance, token: newToken() });
      const { session } = await enqueueSession(d.ctx, instance.id, "admin");
      sessions.push({ id: session.id, script });
    }
    const ended = await waitFor("every session to end", async () => {
      const views = await Promise.all(sessions.map((s) => showSession(d.ctx, s.id)));
      return views.every((v) => v.endedAt) ? views : null;
    }, 40_000);
    await waitFor("every delivery to be final", async () => (await d.ctx.db.delivery.count({ where: { status: "pending" } })) === 0, 20_000);
    await waitFor("every outcome webhook", async () => outcomeHooks().length >= sessions.length, 20_000);
    const m = await w.stop();

    const context = `seed ${SEED} (set FUZZ_SEED to replay)`;
    for (const view of ended) expectRecorded(view, context);
    const hooks = receiver.requests.map((r) => verified(r, secret));
    for (const view of ended) {
      const mine = hooks.filter((h) => h.data.sessionId === view.id);
      const outcomes = mine.filter((h) => h.type.startsWith("session."));
      expect(outcomes.map((h) => h.type), context).toEqual([`session.${view.status}`]);
      const stored = await d.ctx.db.qrCode.findMany({ where: { sessionId: view.id }, select: { sequence: true } });
      expect(stored.length, context).toBeGreaterThanOrEqual(1); // the first good QR always comes before any ending
      const announced = mine.filter((h) => h.type === "qr.updated").map((h) => h.data.sequence);
      const sequences = new Set(stored.map((q) => q.sequence));
      for (const sequence of announced) expect(sequences.has(sequence as number), context).toBe(true);
    }
    expect((await fetch(`${d.url}/healthz`)).status).toBe(200);
    expectBounded(m, LIMITS, context);
  }, 90_000);
});

describe("PNG bombs through the real daemon, to a webhook and an email operator", () => {
  it("ends every session, mails no bomb, and keeps the daemon's memory, event loop and health checks bounded", async () => {
    const frame = (png: Buffer) => JSON.stringify({ type: "qrCode", message: png.toString("base64") });
    const w = watch();
    const ids: string[] = [];
    for (const [k, bomb] of bombs().entries()) {
      const idInstance = newIdInstance();
      const goodFrame = { kind: "frame" as const, data: goodQrFrame(good, 500 + k), good: true };
      provider.define(idInstance, { steps: [goodFrame, { kind: "wait", ms: 60 }, { kind: "frame", data: frame(bomb) }, { kind: "wait", ms: 60 }], ending: { kind: "terminal", frame: TERMINALS.timeout } });
      const instance = await addInstance(d.ctx, { apiUrl: provider.url, idInstance, token: newToken() });
      ids.push((await enqueueSession(d.ctx, instance.id, "admin")).session.id);
    }
    let slowestHealthMs = 0;
    const ended = await waitFor("every bombed session to end", async () => {
      const asked = Date.now();
      expect((await fetch(`${d.url}/healthz`)).status).toBe(200);
      slowestHealthMs = Math.max(slowestHealthMs, Date.now() - asked);
      const views = await Promise.all(ids.map((id) => showSession(d.ctx, id)));
      return views.every((v) => v.endedAt) ? views : null;
    }, 40_000);
    await waitFor("every delivery to be final", async () => (await d.ctx.db.delivery.count({ where: { status: "pending" } })) === 0, 20_000);
    const m = await w.stop();
    for (const view of ended) expectRecorded(view, `bombed session ${view.idInstance}`);
    const mails = smtp.messages.filter((mail) => ended.some((v) => mail.raw.includes(v.idInstance)));
    // Each session's first QR (a good one) is mailed; a bomb is never enlarged into a message of megabytes.
    expect(mails.length).toBeGreaterThanOrEqual(ended.length);
    expect(Math.max(...mails.map((mail) => mail.raw.length))).toBeLessThan(1_000_000);
    expect(slowestHealthMs).toBeLessThan(LIMITS.maxDelayMs);
    expectBounded(m, LIMITS, "PNG bombs");
  }, 90_000);
});

function outcomeHooks(): Hook[] {
  return receiver.requests.map((r) => verified(r, secret)).filter((h) => h.type.startsWith("session."));
}

/** One outcome, written: a final status, one ended attempt that says the same, and a storable error when it failed. */
function expectRecorded(view: SessionView, context: string): void {
  expect(ENDED, context).toContain(view.status);
  expect(view.attempts, context).toHaveLength(1);
  const attempt = view.attempts![0]!;
  expect(attempt.endedAt, context).not.toBeNull();
  expect(attempt.outcome, context).not.toBeNull();
  if (view.status === "failed") {
    expect(view.errorCode, context).toMatch(/^[a-z_]+$/);
    expect(view.error, context).not.toContain("\u0000");
  }
}
