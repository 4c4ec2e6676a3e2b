import { createHash, timingSafeEqual } from "node:crypto";
import { z } from "zod";
import type { Instance } from "../db.js";
import { INSTANCE_STATES } from "../greenapi/types.js";
import type { FleetContext } from "./context.js";
import { FleetError, NotFoundError, ValidationError, describeIssues } from "./errors.js";
import { endSessionAuthorizedByProvider, enqueueSession } from "./sessions.js";

/**
 * The provider's inbound `stateInstanceChanged` webhook (GREEN-API.md, "Inbound webhook"):
 * record the state, start a session on `notAuthorized`, end the open one on `authorized`.
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

const KNOWN_STATES: ReadonlySet<string> = new Set(INSTANCE_STATES);
/** Provider timestamps have whole seconds: an event in the same second as our last record is not stale. */
const SAME_SECOND_MS = 1_000;

export async function handleProviderWebhook(
  ctx: FleetContext,
  body: unknown,
  authorization: string | undefined,
): Promise<WebhookResult> {
  const typeWebhook = parse(envelopeSchema, body).typeWebhook;
  if (typeWebhook !== "stateInstanceChanged") return { handled: false, typeWebhook, instances: [] };
  const event = parse(stateChangedSchema, body);
  const idInstance = event.instanceData.idInstance;
  const candidates = await ctx.db.instance.findMany({ where: { idInstance } });
  if (candidates.length === 0) throw new NotFoundError(`no instance with idInstance ${idInstance}`);
  const authorized = authenticate(ctx, candidates, authorization);
  const instances = [];
  for (const inst of authorized) instances.push({ instanceId: inst.id, ...(await applyState(ctx, inst, event)) });
  return { handled: true, typeWebhook, instances };
}

function parse<T>(schema: z.ZodType<T>, body: unknown): T {
  const parsed = schema.safeParse(body);
  if (!parsed.success) throw new ValidationError(`not a provider webhook: ${describeIssues(parsed.error.issues)}`);
  return parsed.data;
}

/**
 * Several apiUrls may share an idInstance: the caller's token picks which of them it speaks
 * for. An instance without a webhook token never matches, because an open endpoint would let
 * anyone make the fleet open QR sessions in a loop.
 */
function authenticate(ctx: FleetContext, candidates: Instance[], authorization: string | undefined): Instance[] {
  const presented = presentedToken(authorization);
  const configured = candidates.filter((i) => i.webhookTokenCiphertext !== null);
  const idInstance = candidates[0]!.idInstance;
  if (configured.length === 0) {
    throw new UnauthorizedError(`instance ${idInstance} has no webhook token configured, so its webhooks are refused; set one to accept them`);
  }
  if (presented === null) throw new UnauthorizedError("missing Authorization header");
  const matching = configured.filter((i) => sameSecret(ctx.box.open(i.webhookTokenCiphertext!), presented));
  if (matching.length === 0) throw new UnauthorizedError(`wrong Authorization for instance ${idInstance}`);
  return matching;
}

/** GREEN-API sends the configured token back as "Bearer <token>"; a raw token is accepted too. */
function presentedToken(header: string | undefined): string | null {
  const value = header?.trim() ?? "";
  if (value === "") return null;
  const bearer = /^Bearer\s+(.+)$/i.exec(value);
  return bearer ? bearer[1]!.trim() : value;
}

/** Constant-time equality of two secrets of any length (hashing first equalises the lengths). */
export function sameSecret(a: string, b: string): boolean {
  const digest = (s: string) => createHash("sha256").update(s, "utf8").digest();
  return timingSafeEqual(digest(a), digest(b));
}

async function applyState(
  ctx: FleetContext,
  inst: Instance,
  event: StateChanged,
): Promise<{ action: WebhookAction; sessionId?: string }> {
  const state = KNOWN_STATES.has(event.stateInstance) ? event.stateInstance : "unknown";
  // A late retry of an old event must not overwrite newer knowledge (e.g. end a session as
  // authorized after the phone was unlinked again); a clock ahead of ours is capped at now.
  const at = new Date(Math.min(event.timestamp * 1000, Date.now()));
  const { count } = await ctx.db.instance.updateMany({
    where: { id: inst.id, OR: [{ lastStateAt: null }, { lastStateAt: { lt: new Date(at.getTime() + SAME_SECOND_MS) } }] },
    data: {
      lastState: state,
      lastStateAt: at,
      unlinkedSince: state === "notAuthorized" ? (inst.unlinkedSince ?? at) : state === "authorized" ? null : inst.unlinkedSince,
    },
  });
  if (count === 0) {
    ctx.log.info({ instanceId: inst.id, state, eventAt: at }, "provider webhook older than the recorded state: ignored");
    return { action: "stale" };
  }
  if (state !== inst.lastState) ctx.events.emit("instance:state", { instanceId: inst.id, state });
  if (state === "notAuthorized") {
    if (!inst.enabled) return { action: "disabled" };
    const { session, created } = await enqueueSession(ctx, inst, "provider");
    return { action: created ? "enqueued" : "already_open", sessionId: session.id };
  }
  if (state === "authorized") {
    const ended = await endSessionAuthorizedByProvider(ctx, inst.id);
    return ended ? { action: "ended_authorized", sessionId: ended.id } : { action: "recorded" };
  }
  return { action: "recorded" };
}
