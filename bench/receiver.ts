import { createHash } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { DeliveryLedger } from "./ledger.js";
import { secretKey, verify } from "./signature.js";

/**
 * The operators' webhook endpoint: one path per phase (/floor, /daemon), each with its signing
 * secret and its ledger. It answers 200 as soon as a body is in, then checks the signature and
 * matches the QR image to the frame that carried it.
 */

const DATA_URL = "data:image/png;base64,";
/** Standard Webhooks' replay bound: a timestamp further than this from now is refused. */
const TOLERANCE_S = 300;
const MAX_BODY_BYTES = 1024 * 1024;

interface Channel {
  ledger: DeliveryLedger;
  key: Buffer | null;
}

export interface WebhookReceiver {
  /** e.g. http://127.0.0.1:40123 — channels live under it, at their path. */
  url: string;
  open(path: string, ledger: DeliveryLedger): void;
  /** The whsec_ secret of a channel: until it is known, every webhook there counts as badly signed. */
  trust(path: string, whsec: string): void;
  closeChannel(path: string): void;
  close(): Promise<void>;
}

export async function startReceiver(): Promise<WebhookReceiver> {
  const channels = new Map<string, Channel>();
  const server = createServer((req, res) => receive(channels, req, res));
  // The daemon and the bare client keep connections alive between webhooks; so do we.
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen({ host: "127.0.0.1", port: 0, backlog: 4096 }, () => resolve());
  });
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    open: (path, ledger) => void channels.set(path, { ledger, key: null }),
    trust: (path, whsec) => {
      const channel = channels.get(path);
      if (!channel) throw new Error(`no webhook channel at ${path}`);
      channel.key = secretKey(whsec);
    },
    closeChannel: (path) => void channels.delete(path),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function receive(channels: Map<string, Channel>, req: IncomingMessage, res: ServerResponse): void {
  const chunks: Buffer[] = [];
  let size = 0;
  req.on("data", (chunk: Buffer) => {
    size += chunk.length;
    if (size <= MAX_BODY_BYTES) chunks.push(chunk);
  });
  req.on("end", () => {
    const at = Date.now();
    const channel = req.method === "POST" ? channels.get((req.url ?? "").split("?")[0]!) : undefined;
    res.writeHead(channel ? 200 : 404, { "content-length": "0" }).end();
    if (channel) record(channel, req, Buffer.concat(chunks), at);
  });
  req.on("error", () => res.destroy());
}

function record(channel: Channel, req: IncomingMessage, body: Buffer, at: number): void {
  const { ledger, key } = channel;
  const id = header(req, "webhook-id");
  const timestamp = header(req, "webhook-timestamp");
  const signature = header(req, "webhook-signature");
  const fresh = Math.abs(Number(timestamp) - at / 1000) <= TOLERANCE_S;
  if (!key || !id || !signature || !fresh || !verify(key, id, timestamp, body, signature)) {
    ledger.webhooks += 1;
    ledger.invalidSignatures += 1;
    ledger.lastArrivalAt = at;
    return;
  }
  let event: { type?: unknown; data?: { qr?: unknown } };
  try {
    event = JSON.parse(body.toString("utf8")) as typeof event;
  } catch {
    event = {};
  }
  const type = typeof event.type === "string" ? event.type : "(not JSON)";
  const qr = event.data?.qr;
  const png = typeof qr === "string" && qr.startsWith(DATA_URL) ? Buffer.from(qr.slice(DATA_URL.length), "base64") : null;
  ledger.webhook({ webhookId: id, type, pngSha256: png && createHash("sha256").update(png).digest("hex"), at });
}

function header(req: IncomingMessage, name: string): string {
  const value = req.headers[name];
  return Array.isArray(value) ? value.join(" ") : (value ?? "");
}
