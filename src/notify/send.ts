import type { Dispatcher } from "undici";
import type { SecretBox } from "../secrets.js";
import type { Mailer } from "./email.js";
import { liveUrl, signLiveToken } from "./live-link.js";
import type { FleetView, EventView, TryResult } from "./types.js";

/** What every kind of channel may need to send (notify/kinds). */
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

/** The live page's link for the event's instance, valid until `expiresAt`; null for events that carry none. */
export function liveLinkFor(deps: SendDeps, view: EventView, expiresAt: Date): string | null {
  if (!LINKED_TYPES.has(view.type)) return null;
  return liveUrl(deps.publicUrl, signLiveToken(deps.box.hmacKey(), view.instance.id, expiresAt));
}

/** Sessions that still wait for a scan. */
const OPEN = new Set(["queued", "running"]);

/** The digest with a live link on each item whose session still waits for a scan, valid until `expiresAt`. */
export function withLiveLinks(deps: SendDeps, digest: FleetView, expiresAt: Date): FleetView {
  const key = deps.box.hmacKey();
  const items = digest.items.map((item) => {
    const open = item.view.session !== null && OPEN.has(item.view.session.status);
    return { ...item, liveUrl: open ? liveUrl(deps.publicUrl, signLiveToken(key, item.view.instance.id, expiresAt)) : null };
  });
  return { ...digest, items };
}
