import type { Attachment } from "mailparser";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { qrTextOf } from "../../src/cli/qr-terminal.js";
import { addOperator, assign } from "../../src/fleet/operators/operators.js";
import { enqueueSession, showSession } from "../../src/fleet/sessions/sessions.js";
import { verifyLiveToken } from "../../src/notify/live-link.js";
import { startSimulator, type Script, type Simulator } from "../../src/simulator/index.js";
import type { Daemon } from "../../workers/daemon.js";
import { simulatedInstance, startTestDaemon, waitFor } from "../support/fleet.js";
import { startReceiver, type Receiver } from "../support/receiver.js";
import { startSmtp, type ReceivedMail, type TestSmtp } from "../support/smtp.js";
import { pngOfDataUrl, spellings, verified, watchQrs, type Hook } from "./support.js";

/**
 * What operators receive, through the whole daemon: the simulator's QR socket, the session worker,
 * the outbox, the notify worker, a real SMTP server and a real webhook receiver.
 */

const PUBLIC_URL = "https://qr.example.test";
let sim: Simulator;
let smtp: TestSmtp;
let receiver: Receiver;
let d: Daemon;

beforeAll(async () => {
  sim = await startSimulator({ defaults: { rotationMs: 400, scanWindowMs: 3000 } });
  smtp = await startSmtp();
  receiver = await startReceiver();
  d = await startTestDaemon({ SMTP_URL: smtp.url, QRFLEET_PUBLIC_URL: PUBLIC_URL, QRFLEET_WEBHOOK_TIMEOUT_MS: "3000" });
});
afterAll(async () => {
  await d?.close();
  await Promise.all([sim?.close(), smtp?.close(), receiver?.close()]);
});

/** One instance with its own operator (email + webhook), one admin session run to its end and every delivery final. */
async function run(script: Partial<Script>, extra: { phone?: string; maxAttempts?: number; backoffBaseMs?: number; backoffMaxMs?: number } = {}) {
  const instance = await simulatedInstance(d.ctx, sim, script, { label: "Front desk", ...extra });
  const { idInstance, token } = instance;
  const email = `ops-${idInstance}@example.test`;
  const hookUrl = `${receiver.url}?instance=${idInstance}`;
  const added = await addOperator(d.ctx, { name: `ops-${idInstance}`, email, webhook: hookUrl });
  await assign(d.ctx, instance.id, added.operator.id);
  const secret = added.webhookSecret!;
  expect(secret).toMatch(/^whsec_/);

  const qrs = watchQrs(sim, idInstance);
  const started = Date.now();
  const { session } = await enqueueSession(d.ctx, instance.id, "admin");
  const ended = await waitFor("the session to end", async () => {
    const s = await showSession(d.ctx, session.id);
    return s.status !== "queued" && s.status !== "running" && s;
  }, 20_000);
  await waitFor("every delivery of the session to be final", async () =>
    (await d.ctx.db.delivery.count({ where: { event: { sessionId: session.id }, status: "pending" } })) === 0,
  );
  qrs.stop();
  const mails = smtp.messages.filter((m) => m.to.includes(email));
  const hooks = receiver.requests.filter((r) => r.path.endsWith(`?instance=${idInstance}`)).map((r) => verified(r, secret));
  const secrets = spellings([token, secret, d.ctx.config.QRFLEET_ADMIN_TOKEN, d.ctx.config.QRFLEET_SECRET_KEY]);
  return { idInstance, instance, session: ended, secret, secrets, seen: qrs.seen, mails, hooks, tookMs: Date.now() - started };
}

function expectNoSecrets(mail: ReceivedMail, secrets: string[]) {
  const everything = [mail.raw.toString("utf8"), mail.parsed.text ?? "", String(mail.parsed.html), mail.parsed.subject ?? ""].join("\n");
  for (const s of secrets) expect(everything.includes(s), "a secret appears in an email").toBe(false);
}

function expectUniqueIds(hooks: Hook[]) {
  expect(new Set(hooks.map((h) => h.id)).size).toBe(hooks.length);
  for (const h of hooks) expect(h.id).toMatch(/^msg_[0-9a-f-]{36}$/);
}

const links = (mail: ReceivedMail) => ({
  html: [...String(mail.parsed.html).matchAll(/href="([^"]+)"/g)].map((m) => m[1]!.replace(/&amp;/g, "&")),
  text: [...(mail.parsed.text ?? "").matchAll(/https?:\/\/\S+/g)].map((m) => m[0]),
});

describe("what operators receive from the running daemon", () => {
  it("a scan after a few rotations: one email with the live link and a scannable QR, a signed webhook per QR, then session.authorized", async () => {
    const r = await run({ fate: "scan", scanAfterMs: 1800, phone: "79001234567" });
    expect(r.session.status).toBe("authorized");
    expect(r.session.attempts!).toHaveLength(1);
    expect(r.session.attempts![0]!.qrCount).toBeGreaterThanOrEqual(4); // several rotations...
    expect(r.mails).toHaveLength(1); // ...and still one email for the attempt

    const mail = r.mails[0]!;
    expect(mail.parsed.subject).toBe("Scan needed: Front desk (attempt 1 of 3)");
    expect(mail.parsed.text).toBeTruthy();
    expect(mail.parsed.html).toBeTruthy();
    const { html, text } = links(mail);
    for (const first of [html[0], text[0]]) expect(first).toMatch(new RegExp(`^${PUBLIC_URL}/live/[A-Za-z0-9_-]+$`));
    expect(html[0]).toBe(text[0]);
    const liveToken = html[0]!.split("/live/")[1]!;
    expect(verifyLiveToken(d.ctx.box.hmacKey(), liveToken)).toMatchObject({ ok: true, instanceId: r.instance.id });
    const page = await fetch(`${d.url}/live/${liveToken}`); // the same path on the daemon itself answers
    expect(page.status).toBe(200);
    await page.arrayBuffer();

    const images = mail.parsed.attachments.filter((a: Attachment) => a.contentType === "image/png" && a.cid);
    expect(images).toHaveLength(1);
    expect(String(mail.parsed.html)).toContain(`src="cid:${images[0]!.cid}"`);
    const emailed = qrTextOf(images[0]!.content);
    expect(emailed).toMatch(new RegExp(`^qrfleet-sim:${r.idInstance}:`));
    expect(r.seen.has(emailed!)).toBe(true);
    expectNoSecrets(mail, r.secrets);

    expectUniqueIds(r.hooks);
    const qrHooks = r.hooks.filter((h) => h.type === "qr.updated");
    expect(qrHooks.length).toBeGreaterThanOrEqual(1);
    for (const h of qrHooks) {
      expect(h.data).toMatchObject({ instanceId: r.instance.id, sessionId: r.session.id, attempt: 1 });
      expect(r.seen.has(qrTextOf(pngOfDataUrl(h.data.qr))!)).toBe(true);
      expect(Date.parse(String(h.data.expiresAt))).toBeGreaterThan(Date.parse(h.timestamp));
      expect(String(h.data.liveUrl)).toMatch(new RegExp(`^${PUBLIC_URL}/live/`));
    }
    const sequences = qrHooks.map((h) => h.data.sequence as number);
    expect(new Set(sequences).size).toBe(sequences.length); // one webhook per rotation, none twice
    expect(r.hooks.map((h) => h.type).filter((t) => t !== "qr.updated")).toEqual(["session.authorized"]);
    expect(r.hooks.at(-1)!.type).toBe("session.authorized");
    expect(r.hooks.at(-1)!.data).toMatchObject({ status: "authorized", phone: "79001234567", sessionId: r.session.id });
    for (const h of r.hooks) for (const s of r.secrets) expect(h.req.body.includes(s)).toBe(false);
    expect(r.tookMs).toBeLessThan(10_000);
  });

  it("no scan in 2 attempts: a scan email per attempt, a webhook per timed-out attempt, one final email", async () => {
    const r = await run({ fate: "never", rotationMs: 300, scanWindowMs: 1200 }, { maxAttempts: 2, backoffBaseMs: 100, backoffMaxMs: 200 });
    expect(r.session.status).toBe("timed_out");
    expect(r.session.attempts!.map((a) => a.outcome)).toEqual(["timed_out", "timed_out"]);

    const subjects = r.mails.map((m) => m.parsed.subject);
    const name = "Front desk";
    expect(subjects).toEqual([
      `Scan needed: ${name} (attempt 1 of 2)`,
      `Scan needed: ${name} (attempt 2 of 2)`,
      `Not linked: ${name} — no scan in 2 attempts`,
    ]);
    const final = r.mails[2]!;
    expect(final.parsed.text).toContain("all 2 attempts timed out");
    expect(links(final).html[0]).toMatch(new RegExp(`^${PUBLIC_URL}/live/`));
    for (const m of r.mails) expectNoSecrets(m, r.secrets);

    expectUniqueIds(r.hooks);
    const outcomes = r.hooks.filter((h) => h.type !== "qr.updated");
    expect(outcomes.map((h) => h.type)).toEqual(["session.timed_out", "session.timed_out"]);
    expect(outcomes[0]!.data).toMatchObject({ status: "queued", attempt: 1, final: false, nextAttempt: 2, sessionId: r.session.id });
    expect(outcomes[1]!.data).toMatchObject({ status: "timed_out", attempt: 2, maxAttempts: 2, final: true, sessionId: r.session.id });
    const attemptsSeen = new Set(r.hooks.filter((h) => h.type === "qr.updated").map((h) => h.data.attempt));
    expect(attemptsSeen).toEqual(new Set([1, 2]));
  });

  it("a phone other than the expected one: outcome wrong_number, an email naming both numbers, a session.wrong_number webhook", async () => {
    const r = await run({ fate: "scan", scanAfterMs: 900, phone: "79001112233" }, { phone: "79990000001" });
    expect(r.session.status).toBe("wrong_number");
    const wrong = r.mails.filter((m) => m.parsed.subject?.startsWith("Wrong phone linked to"));
    expect(wrong).toHaveLength(1);
    for (const part of [wrong[0]!.parsed.text ?? "", String(wrong[0]!.parsed.html)]) {
      expect(part).toContain("+79001112233");
      expect(part).toContain("+79990000001");
    }
    expect(r.mails).toHaveLength(2); // the scan email of the attempt, and this one
    for (const m of r.mails) expectNoSecrets(m, r.secrets);
    const outcomes = r.hooks.filter((h) => h.type !== "qr.updated");
    expect(outcomes.map((h) => h.type)).toEqual(["session.wrong_number"]);
    expect(outcomes[0]!.data).toMatchObject({ status: "wrong_number", phone: "79001112233", expectedPhone: "79990000001", loggedOut: false });
    expectUniqueIds(r.hooks);
  });
});
