import { z } from "zod";

/**
 * The part of an instance's settings (getSettings / setSettings) qrfleet reads and writes: where
 * the provider's webhooks go, the token it sends back with them, and whether state changes are sent.
 */
export interface WebhookSettings {
  /** "" when the instance has none (webhooks off). */
  webhookUrl: string;
  /** "" when none. A secret: ours or the customer's; never logged or stored as it is. */
  webhookUrlToken: string;
  /** `stateWebhook: "yes"`: the provider sends `stateInstanceChanged`. */
  stateWebhook: boolean;
}

const text = (max: number) =>
  z
    .string()
    .max(max)
    .nullish()
    .transform((v) => v ?? "");

/** getSettings answers many more fields; only these are read. A flag other than "yes" is off. */
export const webhookSettingsSchema = z
  .object({ webhookUrl: text(4000), webhookUrlToken: text(1000), stateWebhook: z.string().max(16).nullish() })
  .transform((s): WebhookSettings => ({ webhookUrl: s.webhookUrl.trim(), webhookUrlToken: s.webhookUrlToken, stateWebhook: s.stateWebhook === "yes" }));

export const saveSettingsSchema = z.object({ saveSettings: z.boolean() });

/** The setSettings body: the provider's wire names, its flags as "yes"/"no". */
export function settingsBody(patch: Partial<WebhookSettings>): Record<string, string> {
  if (Object.keys(patch).length === 0) throw new RangeError("setSettings needs at least one setting");
  return {
    ...(patch.webhookUrl !== undefined && { webhookUrl: patch.webhookUrl }),
    ...(patch.webhookUrlToken !== undefined && { webhookUrlToken: patch.webhookUrlToken }),
    ...(patch.stateWebhook !== undefined && { stateWebhook: patch.stateWebhook ? "yes" : "no" }),
  };
}
