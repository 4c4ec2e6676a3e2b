import { z } from "zod";

/**
 * An instance's settings as the provider's getSettings returns them (a representative part of
 * them: the webhook address, its token and the webhook flags), and what setSettings accepts.
 */

const FLAGS = [
  "outgoingWebhook", "outgoingMessageWebhook", "outgoingAPIMessageWebhook", "incomingWebhook", "deviceWebhook",
  "statusInstanceWebhook", "stateWebhook", "pollMessageWebhook", "incomingBlockWebhook", "incomingCallWebhook",
  "editedMessageWebhook", "deletedMessageWebhook", "markIncomingMessagesReaded", "markIncomingMessagesReadedOnReply",
  "keepOnlineStatus",
] as const;

type Flag = (typeof FLAGS)[number];

export type SimSettings = {
  webhookUrl: string;
  webhookUrlToken: string;
  delaySendMessagesMilliseconds: number;
} & Record<Flag, "yes" | "no">;

const yesNo = z.enum(["yes", "no"], { error: 'must be "yes" or "no"' });
const webhookUrl = z
  .string()
  .max(2000)
  .refine((v) => v === "" || /^https?:\/\/[^\s]+$/.test(v), "must be empty or an http(s) URL");

/** setSettings: any subset of the settings (at least one), each checked; an unknown field is refused. */
export const settingsPatchSchema = z
  .strictObject({
    webhookUrl: webhookUrl.optional(),
    webhookUrlToken: z.string().max(500).optional(),
    delaySendMessagesMilliseconds: z.number().int().min(500).max(600_000).optional(),
    ...Object.fromEntries(FLAGS.map((f) => [f, yesNo.optional()])),
  })
  .refine((patch) => Object.keys(patch).length > 0, "give at least one setting") as z.ZodType<Partial<SimSettings>>;

/** A new instance: every webhook flag off, no URL (the provider's own defaults). */
export function defaultSettings(): SimSettings {
  const flags = Object.fromEntries(FLAGS.map((f) => [f, "no"])) as Record<Flag, "no">;
  return { ...flags, webhookUrl: "", webhookUrlToken: "", delaySendMessagesMilliseconds: 5_000 };
}

/** getSettings' answer: the settings with the account fields the provider adds. */
export function settingsAnswer(settings: SimSettings, wid: string | null): Record<string, unknown> {
  return { wid: wid ?? "", countryInstance: "", typeAccount: "", ...settings, sharedSession: "no", enableMessagesHistory: "no" };
}

/**
 * The provider's limit of about one call a second per instance and method, as a least gap
 * between two calls. A call that comes sooner is answered 429 with Retry-After, and not counted.
 */
export class CallGaps {
  private readonly last = new Map<string, number>();

  constructor(private readonly gapMs: Readonly<Record<string, number>>) {}

  /** Takes the call's turn; the seconds to wait instead, when it comes too soon. */
  take(idInstance: string, method: string, now = Date.now()): { ok: true } | { ok: false; retryAfterS: number } {
    const gap = this.gapMs[method] ?? 0;
    if (gap <= 0) return { ok: true };
    const key = `${idInstance}/${method}`;
    const previous = this.last.get(key);
    if (previous !== undefined && now - previous < gap) return { ok: false, retryAfterS: Math.max(1, Math.ceil((previous + gap - now) / 1000)) };
    this.last.set(key, now);
    return { ok: true };
  }
}
