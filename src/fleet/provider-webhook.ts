import { z } from "zod";
import type { Instance } from "../db.js";
import { toInstanceState } from "../greenapi/types.js";
import { sameSecret } from "../secrets.js";
import type { FleetContext } from "./context.js";
import { policyFor, recordInstanceState } from "./instance-state.js";
import { FleetError } from "./errors.js";
import { parseInput } from "./validate.js";
import { endSessionAuthorizedByProvider, enqueueSession } from "./sessions.js";
import { scheduleSettingsCheck } from "./settings-watch.js";

/**
 * The provider's inbound `stateInstanceChanged` webhook (GREEN-API.md, "Inbound webhook"): the
 * same policies as the sweep (fleet/instance-state.ts): the state recorded, its episode followed
 * (alerts, reboots), a session started on `notAuthorized`, the open one ended on `authorized`.
 */

export class UnauthorizedError extends FleetError {
  constructor(message: string) {
    super("unauthorized", 401, message);
  }
}

export type WebhookAction = "enqueued" | "already_open" | "ended_authorized" | "recorded" | "stale" | "disabled";

export interface WebhookResult {
  /** False for webhook types we do not act on: acknowledged so the provider stops retrying. */
  handled: boolean;
  typeWebhook: string;
  instances: Array<{ instanceId: string; action: WebhookAction; sessionId?: string }>;
}

const envelopeSchema = z.object({ typeWebhook: z.string().min(1).max(100) });

const idInstanceSchema = z
  .union([z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER), z.string().trim().regex(/^\d{1,20}$/)])
  .transform(String);

const stateChangedSchema = z.object({
  typeWebhook: z.literal("stateInstanceChanged"),
  instanceData: z.object({ idInstance: idInstanceSchema }),
  stateInstance: z.string().min(1).max(64),
  timestamp: z.number().int().nonnegative(),
});
type StateChanged = z.infer<typeof stateChangedSchema>;

/** Provider timestamps have whole seconds: an event in the same second as our last record is not stale. */
const PROVIDER_CLOCK_MS = 1_000;

export async function handleProviderWebhook(
  ctx: FleetContext,
  body: unknown,
  authorization: string | undefined,
): Promise<WebhookResult> {
  const typeWebhook = parseInput(envelopeSchema, body, "not a provider webhook").typeWebhook;
  if (typeWebhook !== "stateInstanceChanged") return { handled: false, typeWebhook, instances: [] };
  const event = parseInput(stateChangedSchema, body, "not a provider webhook");
  const idInstance = event.instanceData.idInstance;
  const candidates = await ctx.db.instance.findMany({ where: { idInstance } });
  const authorized = authenticate(ctx, idInstance, candidates, authorization);
  const instances = [];
  for (const inst of authorized) instances.push({ instanceId: inst.id, ...(await applyState(ctx, inst, event)) });
  return { handled: true, typeWebhook, instances };
}

/** One answer for every refusal, so a caller without the token learns nothing about which instances exist. */
const REFUSED = "not accepted: the Authorization header does not carry the webhook token of an instance in this fleet";

/**
 * Several apiUrls may share an idInstance: the caller's token picks which of them it speaks
 * for. An instance without a webhook token never matches, because an open endpoint would let
 * anyone make the fleet open QR sessions in a loop. Why a call was refused goes to the log only.
 */
function authenticate(ctx: FleetContext, idInstance: string, candidates: Instance[], authorization: string | undefined): Instance[] {
  const presented = presentedToken(authorization);
  const configured = candidates.filter((i) => i.webhookTokenCiphertext !== null);
  const matching = presented === null ? [] : configured.filter((i) => webhookTokenIs(ctx, i, presented));
  if (matching.length > 0) return matching;
  const why =
    candidates.length === 0 ? "no such instance"
    : configured.length === 0 ? "the instance has no webhook token configured (set one to accept its webhooks)"
    : presented === null ? "no Authorization header" : "a wrong token";
  ctx.log.info({ idInstance, why }, "provider webhook refused");
  throw new UnauthorizedError(REFUSED);
}

/** A stored token that opens under no key of the ring matches nothing: the caller gets the usual refusal, the log says why. */
function webhookTokenIs(ctx: FleetContext, inst: Instance, presented: string): boolean {
  try {
    return sameSecret(ctx.box.open(inst.webhookTokenCiphertext!), presented);
  } catch {
    ctx.log.warn({ instanceId: inst.id }, "the instance's webhook token cannot be decrypted with any configured key; set it again");
    return false;
  }
}

/** GREEN-API sends the configured token back as "Bearer <token>"; a raw token is accepted too. */
function presentedToken(header: string | undefined): string | null {
  const value = header?.trim() ?? "";
  if (value === "") return null;
  const bearer = /^Bearer\s+(.+)$/i.exec(value);
  return bearer ? bearer[1]!.trim() : value;
}

async function applyState(
  ctx: FleetContext,
  inst: Instance,
  event: StateChanged,
): Promise<{ action: WebhookAction; sessionId?: string }> {
  const state = toInstanceState(event.stateInstance);
  // A late retry of an old event must not overwrite newer knowledge (e.g. end a session as
  // authorized after the phone was unlinked again); a clock ahead of ours is capped at now.
  const at = new Date(Math.min(event.timestamp * 1000, Date.now()));
  if (!(await recordInstanceState(ctx, { instance: inst, state, at, precisionMs: PROVIDER_CLOCK_MS }))) return { action: "stale" };
  const policy = policyFor(state, ctx.config.QRFLEET_STATE_POLICIES);
  if (policy === "start_session") {
    if (!inst.enabled) return { action: "disabled" };
    const { session, created } = await enqueueSession(ctx, inst, "provider");
    return { action: created ? "enqueued" : "already_open", sessionId: session.id };
  }
  // Only the socket's accountData names the phone that scanned: with a phone expected, the attempt decides.
  if (policy === "end_session" && !inst.expectedPhone) {
    const ended = await endSessionAuthorizedByProvider(ctx, inst.id);
    if (ended) await scheduleSettingsCheck(ctx, inst.id);
    return ended ? { action: "ended_authorized", sessionId: ended.id } : { action: "recorded" };
  }
  return { action: "recorded" };
}
