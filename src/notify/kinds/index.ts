import type { ChannelKind } from "../../db.js";
import { emailKind } from "./email.js";
import type { ChannelKindSender } from "./kind.js";
import { webhookKind } from "./webhook.js";

export type { ChannelKindSender, Freshness, QrCandidates, WantsInput } from "./kind.js";

/** Every kind of channel the outbox sends through, by the name stored in Channel.kind. */
export const CHANNEL_KINDS: Readonly<Record<ChannelKind, ChannelKindSender>> = { email: emailKind, webhook: webhookKind };
