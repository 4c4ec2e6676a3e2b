import type { AddressInfo } from "node:net";
import { SMTPServer } from "smtp-server";
import type { DeliveryLedger } from "./ledger.js";

/**
 * The operators' mail server: accepts every message and hands its raw text, with the moment it
 * was accepted, to the ledger of the phase running now. Nothing is parsed or stored.
 */
export interface MailSink {
  port: number;
  url: string;
  /** Where accepted messages are counted from now on; null drops them uncounted. */
  routeTo(ledger: DeliveryLedger | null): void;
  close(): Promise<void>;
}

/** An SMTP server that accepts every message, unparsed, and hands it over with the moment it was accepted. */
export function acceptingSmtpServer(onMessage: (raw: Buffer, at: number, answer: () => void) => void): SMTPServer {
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ["STARTTLS", "AUTH"],
    logger: false,
    disableReverseLookup: true,
    closeTimeout: 500,
    size: 10 * 1024 * 1024,
    onData(stream, _session, callback) {
      const chunks: Buffer[] = [];
      stream.on("data", (c: Buffer) => chunks.push(c));
      stream.on("end", () => onMessage(Buffer.concat(chunks), Date.now(), () => callback()));
    },
  });
  server.on("error", () => undefined); // a client that hangs up mid-message is not our failure
  return server;
}

export async function startSink(): Promise<MailSink> {
  let ledger: DeliveryLedger | null = null;
  const server = acceptingSmtpServer((raw, at, answer) => {
    answer();
    ledger?.email(raw.toString("latin1"), at);
  });
  await new Promise<void>((resolve, reject) => {
    server.server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const port = (server.server.address() as AddressInfo).port;
  return {
    port,
    url: `smtp://127.0.0.1:${port}`,
    routeTo: (next) => void (ledger = next),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
