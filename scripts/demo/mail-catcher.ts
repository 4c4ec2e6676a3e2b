import { mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { simpleParser, type ParsedMail } from "mailparser";
import { SMTPServer } from "smtp-server";
import { escapeHtml, listen, page, send } from "./http-page.js";

/**
 * The demo's mail catcher: an SMTP server that accepts anything on 127.0.0.1, keeps each message
 * as an `.eml` file, and an HTTP page that lists them with links to the raw message, its HTML
 * body and its inline QR image. Messages from earlier runs stay listed: they are just files.
 */

export interface CaughtMail {
  file: string;
  subject: string;
  to: string;
  date: Date;
  /** It carries an inline image (the QR). */
  hasImage: boolean;
}

export interface MailCatcher {
  /** For SMTP_URL, e.g. smtp://127.0.0.1:40123 */
  smtpUrl: string;
  /** The HTTP page listing the messages. */
  pageUrl: string;
  close(): Promise<void>;
}

const EML_NAME = /^[\w.-]+\.eml$/;
// A demo message is tens of kilobytes (an HTML body and one PNG); anything much bigger is not ours.
const MAX_MESSAGE_BYTES = 5 * 1024 * 1024;

export async function startMailCatcher(opts: { dir: string; onMail?: (mail: CaughtMail) => void }): Promise<MailCatcher> {
  await mkdir(opts.dir, { recursive: true });
  const parsed = new Map<string, ParsedMail>();
  let counter = 0;

  const smtp = new SMTPServer({
    authOptional: true,
    // No STARTTLS: the catcher has no certificate, and nodemailer would upgrade to it if offered.
    disabledCommands: ["STARTTLS", "AUTH"],
    size: MAX_MESSAGE_BYTES,
    logger: false,
    // Bounded so Ctrl-C does not wait on the daemon's pooled SMTP connection.
    closeTimeout: 1_000,
    onData(stream, _session, callback) {
      const chunks: Buffer[] = [];
      stream.on("data", (c: Buffer) => chunks.push(c));
      stream.on("error", (err) => callback(err));
      stream.on("end", () => {
        if (stream.sizeExceeded) return callback(Object.assign(new Error("message too big"), { responseCode: 552 }));
        const raw = Buffer.concat(chunks);
        const file = `${new Date().toISOString().replace(/[:.]/g, "-")}-${++counter}.eml`;
        writeFile(path.join(opts.dir, file), raw)
          .then(() => simpleParser(raw))
          .then((mail) => {
            parsed.set(file, mail);
            opts.onMail?.(summary(file, mail));
            callback(null, `kept as ${file}`);
          })
          .catch((err: Error) => callback(err));
      });
    },
  });
  await new Promise<void>((resolve, reject) => {
    smtp.once("error", reject);
    smtp.listen(0, "127.0.0.1", () => resolve());
  });
  smtp.on("error", () => undefined);
  const smtpPort = (smtp.server.address() as AddressInfo).port;

  async function load(file: string): Promise<ParsedMail | null> {
    if (!EML_NAME.test(file)) return null;
    const cached = parsed.get(file);
    if (cached) return cached;
    const raw = await readFile(path.join(opts.dir, file)).catch(() => null);
    if (!raw) return null;
    const mail = await simpleParser(raw);
    parsed.set(file, mail);
    return mail;
  }

  async function listing(): Promise<CaughtMail[]> {
    const files = (await readdir(opts.dir)).filter((f) => EML_NAME.test(f));
    const mails = await Promise.all(files.map(async (f) => ((m) => (m ? summary(f, m) : null))(await load(f))));
    return mails.filter((m): m is CaughtMail => m !== null).sort((a, b) => b.date.getTime() - a.date.getTime());
  }

  const http = createServer((req, res) => {
    handle(req, res).catch(() => send(res, 500, "text/plain", "the catcher could not read that message"));
  });
  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://catcher");
    if (url.pathname === "/") return send(res, 200, "text/html", renderList(await listing(), opts.dir));
    if (url.pathname === "/messages.json") return send(res, 200, "application/json", JSON.stringify(await listing()));
    const m = /^\/mail\/([^/]+\.eml)(?:\/(html|qr\.png))?$/.exec(url.pathname);
    const mail = m ? await load(m[1]!) : null;
    if (!m || !mail) return send(res, 404, "text/plain", "no such message");
    const file = m[1]!;
    if (!m[2]) return send(res, 200, "text/plain", await readFile(path.join(opts.dir, file)));
    const image = mail.attachments.find((a) => a.contentType.startsWith("image/"));
    if (m[2] === "qr.png") {
      return image ? send(res, 200, image.contentType, image.content) : send(res, 404, "text/plain", "this message has no image");
    }
    // The message's own HTML (mailparser has already inlined its cid: image as a data: URL). It is
    // our daemon's mail, but a CSP still keeps any script in it from running on this origin.
    const html = typeof mail.html === "string" ? mail.html : `<pre>${escapeHtml(mail.text ?? "")}</pre>`;
    res.setHeader("content-security-policy", "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'");
    return send(res, 200, "text/html", html);
  }
  await listen(http);
  const pageUrl = `http://127.0.0.1:${(http.address() as AddressInfo).port}/`;

  return {
    smtpUrl: `smtp://127.0.0.1:${smtpPort}`,
    pageUrl,
    async close() {
      http.closeAllConnections();
      await Promise.all([
        new Promise<void>((resolve) => smtp.close(() => resolve())),
        new Promise<void>((resolve) => (http as Server).close(() => resolve())),
      ]);
    },
  };
}

function summary(file: string, mail: ParsedMail): CaughtMail {
  const to = Array.isArray(mail.to) ? mail.to.map((a) => a.text).join(", ") : (mail.to?.text ?? "");
  const hasImage = mail.attachments.some((a) => a.contentType.startsWith("image/"));
  return { file, subject: mail.subject ?? "(no subject)", to, date: mail.date ?? new Date(0), hasImage };
}

function renderList(mails: CaughtMail[], dir: string): string {
  const rows = mails
    .map((m) => {
      const f = encodeURIComponent(m.file);
      return (
        `<tr><td>${escapeHtml(m.date.toLocaleString())}</td><td>${escapeHtml(m.to)}</td>` +
        `<td><a href="/mail/${f}/html">${escapeHtml(m.subject)}</a></td>` +
        `<td><a href="/mail/${f}">.eml</a>${m.hasImage ? ` · <a href="/mail/${f}/qr.png">QR image</a>` : ""}</td></tr>`
      );
    })
    .join("");
  return page(
    "qrfleet demo — mail",
    `<h1>Mail caught by the demo (${mails.length})</h1><p>Files in <code>${escapeHtml(dir)}</code>. Newest first; reload to refresh.</p>` +
      `<table><tr><th>Time</th><th>To</th><th>Subject</th><th>Open</th></tr>${rows}</table>`,
  );
}
