import type { AddressInfo } from "node:net";
import { simpleParser, type ParsedMail } from "mailparser";
import { SMTPServer } from "smtp-server";

/** A real SMTP peer in-process: every accepted message is parsed and kept for assertions. */

export interface ReceivedMail {
  from: string | null;
  to: string[];
  raw: Buffer;
  parsed: ParsedMail;
}

export interface TestSmtp {
  port: number;
  /** smtp://127.0.0.1:<port>, for createMailer. */
  url: string;
  messages: ReceivedMail[];
  /** Refuse the next `count` messages with this SMTP reply code (4xx: try later, 5xx: never). */
  failNext(count: number, code?: number, text?: string): void;
  waitFor(predicate: (mail: ReceivedMail) => boolean, timeoutMs?: number): Promise<ReceivedMail>;
  close(): Promise<void>;
}

export interface SmtpOptions {
  /**
   * Runs once a message is kept and before it is answered 250, so a test can act while the
   * sender waits for the reply (kill it, say); an error it throws refuses the message.
   */
  beforeReply?: (mail: ReceivedMail) => Promise<void> | void;
}

export async function startSmtp(opts: SmtpOptions = {}): Promise<TestSmtp> {
  const messages: ReceivedMail[] = [];
  const waiters = new Set<() => void>();
  let failures: { count: number; code: number; text: string } = { count: 0, code: 451, text: "try again later" };

  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ["STARTTLS", "AUTH"],
    logger: false,
    closeTimeout: 500,
    disableReverseLookup: true,
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on("data", (c: Buffer) => chunks.push(c));
      stream.on("end", () => {
        if (failures.count > 0) {
          failures.count -= 1;
          const err = Object.assign(new Error(failures.text), { responseCode: failures.code });
          return callback(err);
        }
        const raw = Buffer.concat(chunks);
        simpleParser(raw, { keepCidLinks: true })
          .then((parsed) => {
            const from = session.envelope.mailFrom ? session.envelope.mailFrom.address : null;
            const mail: ReceivedMail = { from, to: session.envelope.rcptTo.map((r) => r.address), raw, parsed };
            messages.push(mail);
            for (const w of waiters) w();
            return opts.beforeReply?.(mail);
          })
          .then(() => callback())
          .catch((err: Error) => callback(err));
      });
    },
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const port = (server.server.address() as AddressInfo).port;

  return {
    port,
    url: `smtp://127.0.0.1:${port}`,
    messages,
    failNext(count, code = 451, text = code >= 500 ? "mailbox unavailable" : "try again later") {
      failures = { count, code, text };
    },
    waitFor(predicate, timeoutMs = 5000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const found = messages.find(predicate);
          if (!found) return false;
          clearTimeout(timer);
          waiters.delete(onMessage);
          resolve(found);
          return true;
        };
        const onMessage = () => void check();
        const timer = setTimeout(() => {
          waiters.delete(onMessage);
          reject(new Error(`no matching email within ${timeoutMs} ms (${messages.length} received)`));
        }, timeoutMs);
        if (!check()) waiters.add(onMessage);
      });
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
