import type { Dispatcher } from "undici";
import type { SecretBox } from "../secrets.js";
import type { ChannelInfo } from "./channels.js";
import type { EventEmailRequest, Mailer } from "./email.js";
import { liveUrl, signLiveToken } from "./live-link.js";
import type { TryResult, EventView, QrView } from "./types.js";
import { buildWebhookBody, postWebhook, webhookMessageId } from "./webhook.js";

/**
 * One try of one delivery through its channel. The first try (sent by the process that stored
 * the QR or outcome) and every retry (the notify queue) go through here, so both send the same.
 */

export interface SendDeps {
  box: SecretBox;
  mailer: Mailer;
  publicUrl: string;
  liveLinkTtlS: number;
  webhookTimeoutMs: number;
  /** Keep-alive connections to webhook endpoints. Default: undici's global agent */
  http?: Dispatcher;
}

/** Events whose messages link to the live page. */
const LINKED_TYPES = new Set(["qr.updated", "session.timed_out"]);

export function permanent(error: string): TryResult {
  return { kind: "permanent", status: null, body: null, error };
}

function link(deps: SendDeps, instanceId: string, expiresAt: Date): string {
  return liveUrl(deps.publicUrl, signLiveToken(deps.box.hmacKey(), instanceId, expiresAt));
}

export async function sendWebhook(
  deps: SendDeps,
  channel: ChannelInfo,
  deliveryId: string,
  view: EventView,
  qr: QrView | null,
  now: Date,
): Promise<TryResult> {
  if (!channel.signer) return permanent(channel.problem ?? "the webhook channel has no signing secret");
  // Derived from the event, not the clock, so every retry sends the same body.
  const expiresAt = new Date(view.createdAt.getTime() + deps.liveLinkTtlS * 1000);
  const liveLink = LINKED_TYPES.has(view.type) ? link(deps, view.instance.id, expiresAt) : null;
  const body = JSON.stringify(buildWebhookBody(view, { liveUrl: liveLink, qr }));
  return postWebhook({
    url: channel.address, signer: channel.signer, msgId: webhookMessageId(deliveryId), body,
    timeoutMs: deps.webhookTimeoutMs, now, dispatcher: deps.http,
  });
}

/** What an email channel gets, for the mailer to compose and send. */
export function emailFor(deps: SendDeps, channel: ChannelInfo, view: EventView, qr: QrView | null, now: Date): EventEmailRequest {
  const expiresAt = new Date(now.getTime() + deps.liveLinkTtlS * 1000);
  const withLink = LINKED_TYPES.has(view.type);
  return {
    view,
    qr,
    liveUrl: withLink ? link(deps, view.instance.id, expiresAt) : null,
    liveExpiresAt: withLink ? expiresAt : null,
    to: channel.address,
  };
}
