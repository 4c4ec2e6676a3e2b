import { liveLinkFor, permanent, withLiveLinks } from "../send.js";
import { isFleetView } from "../types.js";
import { buildFleetBody, buildWebhookBody, postWebhook, webhookMessageId } from "../webhook.js";
import { ATTEMPT_ENDED, type ChannelKindSender } from "./kind.js";

/**
 * A signed POST to the operator's receiver. It announces one exact QR image, so a newer image
 * ends it; its body is derived from the event, not the clock, so every retry sends the same.
 * In digest mode it is one signed batch of the events held back.
 */
export const webhookKind: ChannelKindSender = {
  // A receiver answering in 50 ms still takes 600 QR updates a second.
  inFlight: 32,
  repeatable: true,
  disabledForFailing: true,
  // Machines read webhooks: one event per delivery unless an admin asks for batches.
  digestFleetWide: false,
  // Machines: every event.
  wants: () => true,
  fresh({ open, announced, latest }) {
    if (!open) return ATTEMPT_ENDED;
    if (!announced) return { ok: false, reason: "its QR image is gone" };
    if (latest && latest.sequence > announced.sequence) return { ok: false, reason: "a newer QR superseded it" };
    return { ok: true, qr: announced };
  },
  async send(deps, channel, deliveryId, view, qr, now) {
    if (!channel.signer) return permanent(channel.problem ?? "the webhook channel has no signing secret");
    const expiresAt = new Date(view.createdAt.getTime() + deps.liveLinkTtlS * 1000);
    const body = JSON.stringify(
      isFleetView(view)
        ? buildFleetBody(withLiveLinks(deps, view, expiresAt))
        : buildWebhookBody(view, { liveUrl: liveLinkFor(deps, view, expiresAt), qr }),
    );
    return postWebhook({
      url: channel.address, signer: channel.signer, msgId: webhookMessageId(deliveryId), body,
      timeoutMs: deps.webhookTimeoutMs, now, dispatcher: deps.http,
    });
  },
};
