import type { ChannelKind } from "../../db.js";
import { emailKind } from "./email.js";
import type { ChannelKindSender, WantsInput } from "./kind.js";
import { webhookKind } from "./webhook.js";

export type { ChannelKindSender, Freshness, QrCandidates, WantsInput } from "./kind.js";

/** Every kind of channel the outbox sends through, by the name stored in Channel.kind. */
export const CHANNEL_KINDS: Readonly<Record<ChannelKind, ChannelKindSender>> = { email: emailKind, webhook: webhookKind };

const KIND_NAMES = Object.keys(CHANNEL_KINDS) as ChannelKind[];

/** The kinds that hear of an event (their `wants`): what the statements that write deliveries route by. */
export function kindsWanting(event: WantsInput): ChannelKind[] {
  return KIND_NAMES.filter((kind) => CHANNEL_KINDS[kind].wants(event));
}

/**
 * The kinds whose QR update is stale once a newer QR exists (their `fresh` asks for the image
 * announced): a batch that stores two images of a session at once writes the older one's
 * deliveries to them as expired.
 */
export const KINDS_ENDED_BY_A_NEWER_QR: readonly ChannelKind[] = (() => {
  const older = { png: Buffer.alloc(0), sequence: 1, receivedAt: new Date(0), validUntil: new Date(0) };
  return KIND_NAMES.filter((kind) => !CHANNEL_KINDS[kind].fresh({ open: true, announced: older, latest: { ...older, sequence: 2 } }).ok);
})();

/** The kinds a fleet-wide operator's channel is digested for unless its mode is set (their `digestFleetWide`). */
export const KINDS_DIGESTED_FLEET_WIDE: readonly ChannelKind[] = KIND_NAMES.filter((kind) => CHANNEL_KINDS[kind].digestFleetWide);
