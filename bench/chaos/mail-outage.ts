import type { AddressInfo } from "node:net";
import type { SMTPServer } from "smtp-server";
import { acceptingSmtpServer } from "../sink.js";
import type { Captured } from "./captured.js";
import { holdSlot, type Hold, type HoldSlot } from "./hold.js";

/**
 * The operators' mail server of a fault run: accepts every message into `Captured`, and can go
 * away and come back on the same port (the daemon's SMTP_URL does not change), as a mail relay
 * being restarted does. While it is down a connection is refused.
 */
export interface OutageSink {
  url: string;
  /** The next message is kept, then waits for `release()` before its 250. */
  holdNext(): Hold;
  /** Closes the server (connections in flight are cut after a short grace), reopens it after `downMs`. */
  outage(downMs: number): Promise<void>;
  close(): Promise<void>;
}

function server(captured: Captured, held: HoldSlot): SMTPServer {
  return acceptingSmtpServer((raw, at, answer) => {
    captured.emails.push({ raw, at });
    const hold = held.take();
    hold?.arrive();
    void (hold?.released ?? Promise.resolve()).then(answer);
  });
}

async function listen(s: SMTPServer, port: number): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    s.server.once("error", reject);
    s.listen(port, "127.0.0.1", () => resolve());
  });
  return (s.server.address() as AddressInfo).port;
}

const closed = (s: SMTPServer) => new Promise<void>((resolve) => s.close(() => resolve()));

export async function startOutageSink(captured: Captured): Promise<OutageSink> {
  const held = holdSlot();
  let current = server(captured, held);
  const port = await listen(current, 0);
  return {
    url: `smtp://127.0.0.1:${port}`,
    holdNext: () => held.next(),
    async outage(downMs) {
      await closed(current);
      await new Promise((r) => setTimeout(r, downMs));
      current = server(captured, held);
      await listen(current, port);
    },
    close: () => closed(current),
  };
}
