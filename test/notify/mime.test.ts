import { simpleParser } from "mailparser";
import { describe, expect, it } from "vitest";
import { buildMime } from "../../src/notify/mime.js";

const png = Buffer.from("89504e470d0a1a0a0000000d49484452000000010000000108000000003a7e9b55", "hex");

describe("the email's MIME message", () => {
  it("round-trips every part through a mail parser: non-ASCII subject and text, HTML, inline image, own headers", async () => {
    const text = `Приёмная: scan the code.\n.a line that starts with a dot\n${"long ".repeat(40)}end`;
    const raw = buildMime(
      { from: "Флот <qrfleet@example.com>", to: "ops@example.com" },
      {
        headers: { "X-Qrfleet-Instance": "1101000001", "X-Qrfleet-Event": "qr.updated" },
        subject: "Scan needed: Приёмная (attempt 1 of 5)",
        text,
        html: `<p>Приёмная</p><img src="cid:qr@qrfleet">`,
        attachments: [{ filename: "qr-1.png", content: png, contentType: "image/png", cid: "qr@qrfleet" }],
      },
      new Date("2026-12-02T03:04:05Z"),
    );
    expect(raw.toString("latin1").split("\r\n").every((line) => line.length <= 998)).toBe(true);
    const mail = await simpleParser(raw);
    expect(mail.subject).toBe("Scan needed: Приёмная (attempt 1 of 5)");
    expect(mail.from?.value[0]).toEqual({ name: "Флот", address: "qrfleet@example.com" });
    expect(mail.text?.trim()).toBe(text);
    expect(mail.html).toContain("<p>Приёмная</p>");
    expect(mail.date?.toISOString()).toBe("2026-12-02T03:04:05.000Z");
    expect(mail.headers.get("x-qrfleet-instance")).toBe("1101000001");
    expect(mail.messageId).toMatch(/^<[0-9a-f-]{36}@example\.com>$/);
    expect(mail.attachments).toHaveLength(1);
    expect(mail.attachments[0]).toMatchObject({ contentId: "<qr@qrfleet>", contentType: "image/png", filename: "qr-1.png", contentDisposition: "inline" });
    expect(Buffer.compare(mail.attachments[0]!.content, png)).toBe(0);
  });

  it("is a plain multipart/alternative without an image, and folds a header written with a line break into one line", async () => {
    const raw = buildMime({ from: "qrfleet@example.com", to: "ops@example.com" }, {
      headers: {}, subject: "Linked:\r\nBcc: someone@example.com", text: "done", html: "<p>done</p>", attachments: [],
    });
    const mail = await simpleParser(raw);
    expect(mail.headers.get("content-type")).toMatchObject({ value: "multipart/alternative" });
    expect(mail.subject).toBe("Linked: Bcc: someone@example.com");
    expect(mail.bcc).toBeUndefined();
  });
});
