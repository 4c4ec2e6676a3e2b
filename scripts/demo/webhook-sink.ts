import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { Webhook } from "standardwebhooks";
import { escapeHtml, listen, page, send } from "./http-page.js";

/**
 * The demo's webhook receiver: what an operator's endpoint would do. It checks every POST's
 * Standard Webhooks signature with the operator's secret, answers 204 only to a valid one (401
 * otherwise, which the daemon treats as permanent), and keeps the last events for its page.
 */

export interface ReceivedWebhook {
  at: Date;
  id: string;
  type: string;
  verified: boolean;
  /** Why verification failed, when it did. */
  problem: string | null;
  /** The same webhook-id seen before: a retry of a message already received. */
  repeat: boolean;
  label: string | null;
  idInstance: string | null;
  attempt: number | null;
  /** qr.updated carries the image as a data: URL. */
  qr: string | null;
  liveUrl: string | null;
}

export interface WebhookSink {
  /** Where the operator's webhook channel points. */
  url: string;
  pageUrl: string;
  /** The operator's whsec_ secret, known only once the operator exists. */
  setSecret(secret: string): void;
  close(): Promise<void>;
}

// The body is a JSON event with at most one QR image as a data URL: a few kilobytes.
const MAX_BODY_BYTES = 1024 * 1024;

export async function startWebhookSink(opts: { keep?: number; onWebhook?: (w: ReceivedWebhook) => void } = {}): Promise<WebhookSink> {
  const keep = opts.keep ?? 50;
  const events: ReceivedWebhook[] = [];
  const seen = new Set<string>();
  let verifier: Webhook | null = null;

  const server = createServer((req, res) => {
    if (req.method === "POST" && req.url === "/hook") return void receive(req, res);
    const path = new URL(req.url ?? "/", "http://sink").pathname;
    if (req.method === "GET" && path === "/") return send(res, 200, "text/html", renderEvents(events));
    if (req.method === "GET" && path === "/events.json") return send(res, 200, "application/json", JSON.stringify(events));
    send(res, 404, "text/plain", "not found");
  });

  async function receive(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readBody(req).catch(() => null);
    if (body === null) return send(res, 413, "text/plain", "body too large or unreadable");
    const headers = {
      "webhook-id": String(req.headers["webhook-id"] ?? ""),
      "webhook-timestamp": String(req.headers["webhook-timestamp"] ?? ""),
      "webhook-signature": String(req.headers["webhook-signature"] ?? ""),
    };
    let problem: string | null = verifier ? null : "no secret yet";
    let payload: { type?: unknown; data?: Record<string, unknown> } = {};
    try {
      if (verifier) payload = verifier.verify(body, headers) as typeof payload;
    } catch (err) {
      problem = (err as Error).message;
    }
    if (problem) {
      try {
        payload = JSON.parse(body.toString("utf8")) as typeof payload;
      } catch {
        payload = {};
      }
    }
    const data = payload.data ?? {};
    const str = (v: unknown) => (typeof v === "string" ? v : null);
    const event: ReceivedWebhook = {
      at: new Date(),
      id: headers["webhook-id"],
      type: str(payload.type) ?? "(unknown)",
      verified: problem === null,
      problem,
      repeat: seen.has(headers["webhook-id"]),
      label: str(data.label),
      idInstance: str(data.idInstance),
      attempt: typeof data.attempt === "number" ? data.attempt : null,
      qr: str(data.qr)?.startsWith("data:image/png;base64,") ? str(data.qr) : null,
      liveUrl: str(data.liveUrl),
    };
    if (event.verified) seen.add(event.id);
    events.unshift(event);
    events.length = Math.min(events.length, keep);
    opts.onWebhook?.(event);
    if (event.verified) {
      res.writeHead(204).end();
    } else {
      send(res, 401, "text/plain", "signature not verified");
    }
  }

  await listen(server);
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url: `${base}/hook`,
    pageUrl: `${base}/`,
    setSecret(secret) {
      verifier = new Webhook(secret);
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY_BYTES) {
        req.destroy();
        reject(new Error("too large"));
      } else chunks.push(c);
    });
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

function renderEvents(events: ReceivedWebhook[]): string {
  const rows = events
    .map((e) => {
      const check = e.verified ? `<span class="ok">✓ signature</span>` : `<span class="bad">✗ ${escapeHtml(e.problem ?? "")}</span>`;
      const who = [e.label, e.idInstance && `(${e.idInstance})`].filter(Boolean).join(" ");
      const live = e.liveUrl ? `<a href="${escapeHtml(e.liveUrl)}">live page</a>` : "";
      const qr = e.qr ? `<img src="${escapeHtml(e.qr)}" width="96" height="96" alt="QR">` : "";
      return (
        `<tr><td>${escapeHtml(e.at.toLocaleTimeString())}</td><td><b>${escapeHtml(e.type)}</b>${e.repeat ? " (retry)" : ""}</td>` +
        `<td>${escapeHtml(who)}${e.attempt ? ` · attempt ${e.attempt}` : ""}</td><td>${check}<br><code>${escapeHtml(e.id)}</code></td>` +
        `<td>${live}</td><td>${qr}</td></tr>`
      );
    })
    .join("");
  return page(
    "qrfleet demo — webhooks",
    `<h1>Webhooks received (last ${events.length})</h1><p>Each is checked with the operator's whsec_ secret ` +
      `(Standard Webhooks). Newest first; reload to refresh.</p>` +
      `<table><tr><th>Time</th><th>Event</th><th>Instance</th><th>Signature</th><th></th><th>QR</th></tr>${rows}</table>`,
  );
}
