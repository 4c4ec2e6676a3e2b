import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createThreadMailer } from "../../src/notify/mail-thread.js";
import type { EventView } from "../../src/notify/types.js";
import { qrTextOf } from "../../src/cli/qr-terminal.js";
import { startSmtp, type TestSmtp } from "../support/smtp.js";
import QRCode from "qrcode";

/** The daemon's mailer: composing and sending on a thread of its own, against a real SMTP server. */

let smtp: TestSmtp;
beforeAll(async () => {
  smtp = await startSmtp();
});
afterAll(() => smtp.close());

const view: EventView = {
  id: "00000000-0000-4000-8000-000000000001", type: "qr.updated", createdAt: new Date(), attempt: 1, qrSequence: 1,
  data: { sequence: 1, firstOfAttempt: true },
  instance: { id: "00000000-0000-4000-8000-000000000002", idInstance: "7103000001", label: "Thread desk", expectedPhone: null },
  session: { id: "00000000-0000-4000-8000-000000000003", trigger: "admin", status: "running", attempt: 1, maxAttempts: 3, phone: null, errorCode: null, error: null },
};

describe("the mail thread", () => {
  it("composes and sends on its thread: the QR arrives enlarged and scannable, with the instance headers", async () => {
    const mailer = createThreadMailer({ smtpUrl: smtp.url, from: "qrfleet <q@example.test>", maxConnections: 2 });
    const content = "2@thread-test-content";
    const png = await QRCode.toBuffer(content, { type: "png", scale: 2, margin: 2 });
    const qr = { png, sequence: 1, receivedAt: new Date(), validUntil: new Date(Date.now() + 20_000) };
    const result = await mailer.send({ view, qr, liveUrl: "https://qr.example.test/live/abc", liveExpiresAt: new Date(), to: "ops@example.test" });
    expect(result).toMatchObject({ kind: "sent", status: 250 });
    const mail = await smtp.waitFor((m) => m.to.includes("ops@example.test"));
    expect(mail.parsed.subject).toBe("Scan needed: Thread desk (attempt 1 of 3)");
    expect(mail.parsed.headers.get("x-qrfleet-instance")).toBe("7103000001");
    const image = mail.parsed.attachments.find((a) => a.contentType === "image/png")!;
    expect(qrTextOf(image.content)).toBe(content);
    await mailer.close();
    expect(await mailer.send({ view, qr: null, liveUrl: null, liveExpiresAt: null, to: "ops@example.test" })).toMatchObject({ kind: "retryable" });
  });

  it("says an unreachable server is worth a retry, and never throws", async () => {
    const mailer = createThreadMailer({ smtpUrl: "smtp://127.0.0.1:9", from: "qrfleet <q@example.test>", connectionTimeoutMs: 1000 });
    const result = await mailer.send({ view, qr: null, liveUrl: null, liveExpiresAt: null, to: "ops@example.test" });
    expect(result).toMatchObject({ kind: "retryable", status: null });
    await mailer.close();
  });
});
