import { createHmac } from "node:crypto";
import { request, type Dispatcher } from "undici";
import { deadline } from "../lib/deadline.js";
import { maskSecrets } from "../log.js";
import { retryAfterMs } from "../lib/retry-after.js";
import { RESPONSE_BODY_MAX, truncateBody, type FleetView, type TryResult, type EventView, type QrView } from "./types.js";

/**
 * Webhooks per the Standard Webhooks specification. The body is built from the stored event
 * only, so every retry carries the same bytes and the same `webhook-id`; receivers dedupe by id.
 */

export interface WebhookBody {
  type: string;
  /** When the event happened (not when this try was sent). */
  timestamp: string;
  data: Record<string, unknown>;
}

export interface WebhookContext {
  /** Signed live-page link; included for qr.updated and session.timed_out. */
  liveUrl: string | null;
  /** The QR the event announces (qr.updated). */
  qr: QrView | null;
}

/** Stable across retries, so the receiver can recognise a message it already has. */
export function webhookMessageId(deliveryId: string): string {
  return `msg_${deliveryId}`;
}

export function buildWebhookBody(event: EventView, ctx: WebhookContext): WebhookBody {
  const identity = {
    instanceId: event.instance.id,
    idInstance: event.instance.idInstance,
    label: event.instance.label,
    sessionId: event.session?.id ?? null,
    attempt: event.attempt,
    maxAttempts: event.session?.maxAttempts ?? null,
    trigger: event.session?.trigger ?? null,
  };
  const extra: Record<string, unknown> = {};
  if (ctx.liveUrl) extra.liveUrl = ctx.liveUrl;
  if (event.type === "qr.updated" && ctx.qr) {
    extra.sequence = ctx.qr.sequence;
    extra.qr = `data:image/png;base64,${ctx.qr.png.toString("base64")}`;
    extra.expiresAt = ctx.qr.validUntil.toISOString();
  }
  const data = { ...outcomeDefaults(event), ...event.data, ...identity, ...extra };
  return { type: event.type, timestamp: event.createdAt.toISOString(), data: inKeyOrder(data) };
}

/**
 * An event about the fleet. A digest is one signed batch: `events` holds each event's own body, as
 * it would have been sent alone but without its QR image (stale by now); `liveUrl` is there while
 * its session waits for a scan.
 */
export function buildFleetBody(view: FleetView): WebhookBody {
  const timestamp = view.createdAt.toISOString();
  if (view.type !== "digest") return { type: view.type, timestamp, data: inKeyOrder(view.data) };
  const events = view.items.map((i) => buildWebhookBody(i.view, { liveUrl: i.liveUrl, qr: null }));
  return { type: view.type, timestamp, data: inKeyOrder({ ...view.data, count: events.length, events }) };
}

/**
 * The first try is built from memory and a retry from the stored event, whose JSON comes back with
 * its keys reordered: sorting them makes every try of a delivery the same bytes.
 */
function inKeyOrder(data: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.keys(data).sort().map((k) => [k, data[k]]));
}

/** What the session row knows about an outcome, for events recorded with sparse data. */
function outcomeDefaults(event: EventView): Record<string, unknown> {
  if (event.type === "qr.updated" || !event.session) return {};
  const s = event.session;
  return {
    status: s.status,
    ...(s.phone !== null && { phone: s.phone }),
    ...(s.errorCode !== null && { errorCode: s.errorCode }),
    ...(s.error !== null && { error: maskSecrets(s.error) }),
    ...(event.instance.expectedPhone !== null && { expectedPhone: event.instance.expectedPhone }),
  };
}

/**
 * Signs as the Standard Webhooks specification says: `v1,` and the base64 HMAC-SHA256 of
 * `id.timestamp.body` under the secret's key. With node:crypto rather than the standardwebhooks
 * package, whose pure-JS SHA-256 cost five times as much on the per-QR path; tests verify every
 * signature with that package.
 */
export class WebhookSigner {
  readonly #key: Buffer;

  constructor(secret: string) {
    const m = /^whsec_([A-Za-z0-9+/]+={0,2})$/.exec(secret);
    const key = m ? Buffer.from(m[1]!, "base64") : Buffer.alloc(0);
    if (key.length < 16) throw new Error("not a whsec_ secret");
    this.#key = key;
  }

  sign(msgId: string, at: Date, body: string): string {
    const digest = createHmac("sha256", this.#key).update(`${msgId}.${Math.floor(at.getTime() / 1000)}.${body}`).digest("base64");
    return `v1,${digest}`;
  }
}

export interface WebhookRequest {
  url: string;
  /** Signs with the channel's whsec_ secret, which is never logged or echoed in an error. */
  signer: WebhookSigner;
  msgId: string;
  body: string;
  timeoutMs: number;
  now: Date;
  /** Keep-alive connections per endpoint. Default: undici's global agent */
  dispatcher?: Dispatcher;
}

/** Opens a channel's secret as a signer, or says why it cannot be used. */
export function webhookSigner(secret: string): WebhookSigner | string {
  try {
    return new WebhookSigner(secret);
  } catch {
    return "the channel's webhook secret is not a valid whsec_ secret";
  }
}

export async function postWebhook(req: WebhookRequest): Promise<TryResult> {
  const signature = req.signer.sign(req.msgId, req.now, req.body);
  const timeout = deadline(req.timeoutMs);
  try {
    // undici's request, not fetch: a third of the CPU per call, and it never follows a redirect.
    const res = await request(req.url, {
      method: "POST",
      dispatcher: req.dispatcher,
      signal: timeout.signal,
      headers: {
        "content-type": "application/json",
        "user-agent": "qrfleet-webhooks",
        "webhook-id": req.msgId,
        "webhook-timestamp": String(Math.floor(req.now.getTime() / 1000)),
        "webhook-signature": signature,
      },
      body: req.body,
    });
    const body = truncateBody(maskSecrets(await readCapped(res.body)));
    return classifyResponse(res.statusCode, body, retryAfterMs(res.headers["retry-after"], req.now, RETRY_AFTER_CAP_MS));
  } catch (err) {
    const error = timeout.expired ? `webhook timed out after ${req.timeoutMs} ms` : networkError(err);
    return { kind: "retryable", status: null, body: null, error: maskSecrets(error) };
  } finally {
    timeout.clear();
  }
}

/** A receiver's Retry-After is read up to a week; the retry policy bounds it further. */
const RETRY_AFTER_CAP_MS = 7 * 24 * 3600_000;

/**
 * 2xx is delivered; 408, 429 and 5xx may pass later (429 and 503 may say when, in Retry-After);
 * 410 says the endpoint is gone for good; any other answer will not change by itself.
 */
export function classifyResponse(status: number, body: string, retryAfter: number | null = null): TryResult {
  if (status >= 200 && status < 300) return { kind: "sent", status, body };
  if (status === 408 || status === 429 || status >= 500) {
    const asked = (status === 429 || status === 503) && retryAfter !== null ? { retryAfterMs: retryAfter } : {};
    return { kind: "retryable", status, body, error: `webhook answered ${status}`, ...asked };
  }
  if (status === 410) return { kind: "permanent", status, body, error: "webhook answered 410", gone: true };
  const hint = status >= 300 && status < 400 ? " (redirects are not followed: point the channel at the final URL)" : "";
  return { kind: "permanent", status, body, error: `webhook answered ${status}${hint}` };
}

/** Reads a receiver's answer up to what is stored; a longer one is cut (and its connection closed). */
async function readCapped(body: Dispatcher.ResponseData["body"]): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of body) {
      chunks.push(chunk as Buffer);
      size += (chunk as Buffer).length;
      if (size >= RESPONSE_BODY_MAX) break;
    }
  } catch {
    // A body cut off by the timeout still leaves the status, which is what decides.
  }
  return Buffer.concat(chunks).subarray(0, RESPONSE_BODY_MAX).toString("utf8");
}

function networkError(err: unknown): string {
  const e = err as { message?: string; cause?: { code?: string; message?: string } } | null;
  const cause = e?.cause?.code ?? e?.cause?.message;
  return `webhook request failed: ${cause ?? e?.message ?? String(err)}`;
}
