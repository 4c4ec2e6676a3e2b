import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { Attachment } from "mailparser";
import { sendDelivery } from "../../src/notify/deliver.js";
import { createMailer, type Mailer } from "../../src/notify/email.js";
import { verifyLiveToken } from "../../src/notify/live-link.js";
import type { RecordEventInput } from "../../src/notify/outbox.js";
import { testDb } from "../support/db.js";
import { startSmtp, type ReceivedMail, type TestSmtp } from "../support/smtp.js";
import { addQr, box, cleanupOperators, decodeQr, deps, makeInstance, makeOperator, makeSession, PUBLIC_URL, record, uid } from "./fixtures.js";

const db = testDb();
const operators: string[] = [];
let smtp: TestSmtp;
let mailer: Mailer;
beforeAll(async () => {
  smtp = await startSmtp();
  mailer = createMailer(smtp.url, "qrfleet <qrfleet@example.test>", { connectionTimeoutMs: 2000, greetingTimeoutMs: 2000, socketTimeoutMs: 5000 });
});
afterEach(() => cleanupOperators(db, operators));
afterAll(async () => {
  mailer.close();
  await smtp.close();
  await db.$disconnect();
});

async function scene(opts: { label?: string | null; expectedPhone?: string; attempt?: number; trigger?: "admin" | "provider" } = {}) {
  const { instance, token } = await makeInstance(db, opts);
  const session = await makeSession(db, instance.id, { attempt: opts.attempt ?? 1, trigger: opts.trigger });
  const to = `${uid("ops")}@example.test`;
  const added = await makeOperator(db, instance.id, { email: to, webhook: "https://hooks.example.test/never" });
  operators.push(added.operator.id);
  const mailTo = (m: ReceivedMail) => m.to.includes(to);
  return { instance, token, session, to, mailTo, webhookSecret: added.webhookSecret! };
}

/** The email delivery of an event (the webhook one is left pending). */
async function emailDelivery(input: RecordEventInput): Promise<string> {
  const ids = await record(db, input);
  const row = await db.delivery.findFirstOrThrow({ where: { id: { in: ids }, channel: { kind: "email" } } });
  return row.id;
}

const SECRETS = () => [process.env.QRFLEET_SECRET_KEY!, process.env.QRFLEET_ADMIN_TOKEN!];

function expectNoSecrets(mail: ReceivedMail, ...more: string[]) {
  const raw = mail.raw.toString("utf8");
  for (const secret of [...SECRETS(), ...more]) {
    expect(raw).not.toContain(secret);
    expect(mail.parsed.text ?? "").not.toContain(secret);
    expect(String(mail.parsed.html)).not.toContain(secret);
  }
}

describe("email deliveries", () => {
  it("sends the first QR of an attempt: live link first, inline QR that scans, validity and attempt number", async () => {
    const s = await scene({ attempt: 2 });
    const receivedAt = new Date();
    const qr = await addQr(db, s.session.id, 1, 2, receivedAt);
    const validUntil = new Date(receivedAt.getTime() + 20_000);
    const id = await emailDelivery({
      type: "qr.updated", instanceId: s.instance.id, sessionId: s.session.id, attempt: 2, qrSequence: 1, firstOfAttempt: true, data: {},
    });
    expect(await sendDelivery(deps(db, mailer), id)).toEqual({ status: "sent" });
    const mail = await smtp.waitFor(s.mailTo);

    expect(mail.parsed.subject).toBe(`Scan needed: ${s.instance.label} (attempt 2 of 5)`);
    const text = mail.parsed.text!;
    const links = text.match(/https?:\/\/\S+/g)!;
    expect(links[0]!.startsWith(`${PUBLIC_URL}/live/`)).toBe(true);
    const check = verifyLiveToken(box.hmacKey(), links[0]!.split("/live/")[1]!);
    expect(check).toMatchObject({ ok: true, instanceId: s.instance.id });
    expect(text).toContain(`WhatsApp instance "${s.instance.label}" (${s.instance.idInstance}) was logged out`);
    expect(text).toContain("Attempt 2 of 5 (attempt 1 ended without a scan)");
    expect(text).toContain(`valid until ${validUntil.toISOString().slice(11, 19)} UTC — open the live page for the current code`);
    expect(text).toContain("Opening it starts nothing: if no session is running, the page offers a button that starts one.");

    const html = String(mail.parsed.html);
    expect(html).toContain(`href="${links[0]}"`);
    expect(html.indexOf(links[0]!)).toBeLessThan(html.indexOf("cid:"));
    const image = mail.parsed.attachments.find((a: Attachment) => a.contentType === "image/png")!;
    expect(html).toContain(`src="cid:${image.cid}"`);
    expect(image.related || image.contentDisposition === "inline").toBe(true);
    const decoded = decodeQr(image.content);
    expect(decoded.content).toBe(qr.content);
    expect(decoded.width).toBeGreaterThanOrEqual(300);
    expect(decodeQr(qr.png).width).toBeLessThan(300);
    expectNoSecrets(mail, s.token, s.webhookSecret, s.webhookSecret.slice(6));

    expect(await db.delivery.findUniqueOrThrow({ where: { id } })).toMatchObject({ status: "sent", tries: 1, responseStatus: 250 });
    expect(await sendDelivery(deps(db, mailer), id)).toEqual({ status: "noop" });
    expect(smtp.messages.filter(s.mailTo)).toHaveLength(1);
  });

  it("shows the latest QR of the running attempt, fresher than the one that triggered it", async () => {
    const s = await scene();
    await addQr(db, s.session.id, 1);
    const id = await emailDelivery({
      type: "qr.updated", instanceId: s.instance.id, sessionId: s.session.id, attempt: 1, qrSequence: 1, firstOfAttempt: true, data: {},
    });
    const newer = await addQr(db, s.session.id, 2);
    expect(await sendDelivery(deps(db, mailer), id)).toEqual({ status: "sent" });
    const mail = await smtp.waitFor(s.mailTo);
    expect(decodeQr(mail.parsed.attachments[0]!.content).content).toBe(newer.content);
  });

  it("expires the email of an attempt that has ended", async () => {
    const s = await scene();
    await addQr(db, s.session.id, 1);
    const id = await emailDelivery({
      type: "qr.updated", instanceId: s.instance.id, sessionId: s.session.id, attempt: 1, qrSequence: 1, firstOfAttempt: true, data: {},
    });
    await db.qrSession.update({ where: { id: s.session.id }, data: { status: "queued", attempt: 2 } });
    expect(await sendDelivery(deps(db, mailer), id)).toEqual({ status: "expired" });
    expect(smtp.messages.filter(s.mailTo)).toHaveLength(0);
  });

  it("retries a 4xx SMTP refusal and fails at once on a 5xx", async () => {
    const s = await scene();
    const id = await emailDelivery({ type: "session.timed_out", instanceId: s.instance.id, sessionId: s.session.id, attempt: 5, data: {} });
    smtp.failNext(1, 451);
    const first = await sendDelivery(deps(db, mailer), id);
    expect(first).toEqual({ status: "retry", retryInMs: 5 });
    const row = await db.delivery.findUniqueOrThrow({ where: { id } });
    expect(row).toMatchObject({ tries: 1, status: "pending", responseStatus: 451 });
    expect(row.lastError).toMatch(/451/);
    expect(await sendDelivery(deps(db, mailer), id, new Date(Date.now() + 10))).toEqual({ status: "sent" });
    await smtp.waitFor(s.mailTo);

    const t = await scene();
    const id2 = await emailDelivery({ type: "session.wrong_number", instanceId: t.instance.id, sessionId: t.session.id, attempt: 1, data: {} });
    smtp.failNext(1, 550);
    expect(await sendDelivery(deps(db, mailer), id2)).toEqual({ status: "failed" });
    expect(await db.delivery.findUniqueOrThrow({ where: { id: id2 } })).toMatchObject({ status: "failed", tries: 1, responseStatus: 550 });
  });

  it("says all attempts timed out and offers the live link to start again", async () => {
    const s = await scene({ attempt: 5 });
    const id = await emailDelivery({ type: "session.timed_out", instanceId: s.instance.id, sessionId: s.session.id, attempt: 5, data: {} });
    await sendDelivery(deps(db, mailer), id);
    const mail = await smtp.waitFor(s.mailTo);
    expect(mail.parsed.subject).toBe(`Not linked: ${s.instance.label} — no scan in 5 attempts`);
    expect(mail.parsed.text).toContain("all 5 attempts timed out");
    expect(mail.parsed.text).toContain(`${PUBLIC_URL}/live/`);
    expect(mail.parsed.text).toContain("open the live page and press its button: that starts a new session");
    expect(mail.parsed.attachments).toHaveLength(0);
    expectNoSecrets(mail, s.token);
  });

  it("names the expected and the actual number on wrong_number", async () => {
    const s = await scene({ expectedPhone: "79001234567" });
    const id = await emailDelivery({
      type: "session.wrong_number", instanceId: s.instance.id, sessionId: s.session.id, attempt: 1,
      data: { phone: "79990000000", expectedPhone: "79001234567", loggedOut: true },
    });
    await sendDelivery(deps(db, mailer), id);
    const mail = await smtp.waitFor(s.mailTo);
    expect(mail.parsed.subject).toBe(`Wrong phone linked to ${s.instance.label}`);
    expect(mail.parsed.text).toContain("was linked by +79990000000, but it should belong to +79001234567");
    expect(mail.parsed.text).toContain("logged it out again");
  });

  it("tells the operator to fix the token when it was refused — without the token", async () => {
    const s = await scene({ label: null });
    const id = await emailDelivery({
      type: "session.failed", instanceId: s.instance.id, sessionId: s.session.id, attempt: 1,
      data: { errorCode: "invalid_token", error: `401 for https://api.example/waInstance${s.instance.idInstance}/getStateInstance/${s.token}` },
    });
    await sendDelivery(deps(db, mailer), id);
    const mail = await smtp.waitFor(s.mailTo);
    expect(mail.parsed.subject).toBe(`Action needed: ${s.instance.idInstance} cannot be linked`);
    expect(mail.parsed.text).toContain("Fix the token");
    expect(mail.parsed.text).not.toContain("/live/");
    expectNoSecrets(mail, s.token);
  });

  it("escapes the label in HTML", async () => {
    const s = await scene({ label: `<img src=x onerror="alert(1)"> & co` });
    await addQr(db, s.session.id, 1);
    const id = await emailDelivery({
      type: "qr.updated", instanceId: s.instance.id, sessionId: s.session.id, attempt: 1, qrSequence: 1, firstOfAttempt: true, data: {},
    });
    await sendDelivery(deps(db, mailer), id);
    const mail = await smtp.waitFor(s.mailTo);
    const html = String(mail.parsed.html);
    expect(html).not.toContain("<img src=x");
    expect(html).toContain("&lt;img src=x onerror=&quot;alert(1)&quot;&gt; &amp; co");
    expect(mail.parsed.text).toContain(`<img src=x onerror="alert(1)"> & co`);
  });
});
