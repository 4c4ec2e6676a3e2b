import { CronExpressionParser } from "cron-parser";
import { z } from "zod";
import { parseApiUrl } from "../../greenapi/urls.js";
import { plainText } from "../validate.js";

/** Validation of instance input at the edge; the CLI, the HTTP API and import share it. */

const digits = (what: string, min: number, max: number) =>
  z
    .union([z.string(), z.number()])
    .transform((v) => String(v).trim())
    .pipe(z.string().regex(new RegExp(`^\\d{${min},${max}}$`), `${what} must be ${min} to ${max} digits`));

const apiUrl = z.string().transform((v, ctx) => {
  try {
    return parseApiUrl(v);
  } catch (err) {
    // describeIssues names the field already.
    ctx.addIssue({ code: "custom", message: (err as Error).message.replace(/^apiUrl /, "") });
    return z.NEVER;
  }
});

/** A re-auth schedule polls the provider: more often than once a minute would spend its rate limit for nothing. */
const MIN_CRON_GAP_MS = 60_000;

const cron = z.string().transform((v, ctx) => {
  const expr = v.trim();
  let gap: number;
  try {
    gap = shortestGapMs(expr);
  } catch {
    ctx.addIssue({ code: "custom", message: `"${expr}" is not a cron expression (5 or 6 fields, e.g. "0 */6 * * *")` });
    return z.NEVER;
  }
  if (gap < MIN_CRON_GAP_MS) {
    ctx.addIssue({ code: "custom", message: `"${expr}" runs more often than once a minute` });
    return z.NEVER;
  }
  return expr;
});

/** The shortest time between the next few runs of a cron expression. */
function shortestGapMs(expr: string): number {
  const runs = CronExpressionParser.parse(expr).take(6).map((d) => d.getTime());
  return Math.min(...runs.slice(1).map((t, i) => t - runs[i]!));
}

const phone = z
  .string()
  .transform((v) => v.replace(/[\s()+-]/g, ""))
  .pipe(z.string().regex(/^\d{7,15}$/, "phone must be 7 to 15 digits (international format, no leading +)"));

const token = z
  .string()
  .trim()
  .regex(/^[A-Za-z0-9_-]{8,200}$/, "token must be 8 to 200 letters, digits, - or _ (the instance's apiTokenInstance)");

/** The websocket is the provider's primary path; REST polling is the per-instance fallback. */
export const QR_TRANSPORTS = ["websocket", "rest"] as const;
const qrTransport = z.enum(QR_TRANSPORTS, { error: `must be one of ${QR_TRANSPORTS.join(", ")}` });


export const instanceFields = {
  apiUrl,
  idInstance: digits("idInstance", 4, 20),
  token,
  label: plainText(200).optional(),
  phone: phone.optional(),
  cron: cron.optional(),
  enabled: z.boolean().optional(),
  maxAttempts: z.number().int().min(1).max(100).optional(),
  backoffBaseMs: z.number().int().min(0).max(86_400_000).optional(),
  backoffMaxMs: z.number().int().min(0).max(7 * 86_400_000).optional(),
  webhookToken: z.string().min(8).max(500).optional(),
  qrTransport: qrTransport.optional(),
};

export const newInstanceSchema = z.object(instanceFields).strict();
export type NewInstance = z.infer<typeof newInstanceSchema>;

/** An update may clear optional fields with null. */
export const instanceUpdateSchema = z
  .object({
    apiUrl: instanceFields.apiUrl.optional(),
    token: instanceFields.token.optional(),
    label: instanceFields.label.nullable(),
    phone: instanceFields.phone.nullable(),
    cron: instanceFields.cron.nullable(),
    enabled: instanceFields.enabled,
    maxAttempts: instanceFields.maxAttempts.nullable(),
    backoffBaseMs: instanceFields.backoffBaseMs.nullable(),
    backoffMaxMs: instanceFields.backoffMaxMs.nullable(),
    webhookToken: instanceFields.webhookToken.nullable(),
    qrTransport: instanceFields.qrTransport,
    /** Webhook settings found changed after a re-link are set back, if they were qrfleet's (fleet/instances/settings-watch.ts). */
    restoreSettings: z.boolean("restoreSettings must be true or false").optional(),
    clearAttention: z.boolean().optional(),
  })
  .strict();
export type InstanceUpdate = z.infer<typeof instanceUpdateSchema>;
