import { Webhook } from "standardwebhooks";
import { maskSecrets } from "../log.js";
import { RESPONSE_BODY_MAX, truncateBody, type AttemptResult, type EventView, type QrView } from "./types.js";

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
  return { type: event.type, timestamp: event.createdAt.toISOString(), data: { ...outcomeDefaults(event), ...event.data, ...identity, ...extra } };
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

export interface WebhookRequest {
  url: string;
  /** whsec_… ; used to sign, never logged or echoed in an error. */
  secret: string;
  msgId: string;
  body: string;
  timeoutMs: number;
  now: Date;
}

export async function postWebhook(req: WebhookRequest): Promise<AttemptResult> {
  let signature: string;
  try {
    signature = new Webhook(req.secret).sign(req.msgId, req.now, req.body);
  } catch {
    return { kind: "permanent", status: null, body: null, error: "the channel's webhook secret is not a valid whsec_ secret" };
  }
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), req.timeoutMs);
  try {
    const res = await fetch(req.url, {
      method: "POST",
      redirect: "manual",
      signal: controller.signal,
      headers: {
        "content-type": "application/json",
        "user-agent": "qrfleet-webhooks",
        "webhook-id": req.msgId,
        "webhook-timestamp": String(Math.floor(req.now.getTime() / 1000)),
        "webhook-signature": signature,
      },
      body: req.body,
    });
    const body = truncateBody(maskSecrets(await readCapped(res)));
    return classifyResponse(res.status, body);
  } catch (err) {
    const error = controller.signal.aborted ? `webhook timed out after ${req.timeoutMs} ms` : networkError(err);
    return { kind: "retryable", status: null, body: null, error: maskSecrets(error) };
  } finally {
    clearTimeout(timer);
  }
}

/** 2xx is delivered; 408, 429 and 5xx may pass later; any other answer will not change by itself. */
export function classifyResponse(status: number, body: string): AttemptResult {
  if (status >= 200 && status < 300) return { kind: "sent", status, body };
  if (status === 408 || status === 429 || status >= 500) {
    return { kind: "retryable", status, body, error: `webhook answered ${status}` };
  }
  const hint = status >= 300 && status < 400 ? " (redirects are not followed: point the channel at the final URL)" : "";
  return { kind: "permanent", status, body, error: `webhook answered ${status}${hint}` };
}

async function readCapped(res: Response): Promise<string> {
  if (!res.body) return "";
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    while (size < RESPONSE_BODY_MAX) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      size += value.length;
    }
  } catch {
    // A body cut off by the timeout still leaves the status, which is what decides.
  } finally {
    reader.cancel().catch(() => undefined);
  }
  return new TextDecoder().decode(Buffer.concat(chunks).subarray(0, RESPONSE_BODY_MAX));
}

function networkError(err: unknown): string {
  const e = err as { message?: string; cause?: { code?: string; message?: string } } | null;
  const cause = e?.cause?.code ?? e?.cause?.message;
  return `webhook request failed: ${cause ?? e?.message ?? String(err)}`;
}
