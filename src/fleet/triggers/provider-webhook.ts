import { z } from "zod";
import { toInstanceState } from "../../greenapi/types.js";
import type { FleetContext } from "../context.js";
import { WebhookTokens } from "./hook-auth.js";
import { HookIntake, type HookOutcome } from "./hook-intake.js";
import { parseInput } from "../validate.js";

/**
 * The provider's inbound `stateInstanceChanged` webhook (README, "The provider's webhook"): the
 * same policies as the sweep (fleet/instances/instance-state.ts): the state recorded, its episode followed
 * (alerts, reboots), a session started on `notAuthorized`, the open one ended on `authorized`.
 * The provider retries anything but a 200 for a day, so a 200 means the state is committed.
 */

export { UnauthorizedError } from "./hook-auth.js";
export type { WebhookAction } from "./hook-intake.js";

export interface WebhookResult {
  /** False for webhook types we do not act on: acknowledged so the provider stops retrying. */
  handled: boolean;
  typeWebhook: string;
  instances: HookOutcome[];
}

/** What one HTTP face keeps between webhooks: the token cache and the batched writer. */
export interface ProviderHooks {
  tokens: WebhookTokens;
  intake: HookIntake;
  close(): Promise<void>;
}

/**
 * The fleet's webhook tokens are read as the face opens, not at its first webhook. Instances added,
 * removed or given another webhook token are read again at once, and the whole fleet when this
 * process may have missed such news.
 */
export function openProviderHooks(ctx: FleetContext): ProviderHooks {
  const tokens = new WebhookTokens(ctx);
  tokens.warm();
  const intake = new HookIntake(ctx);
  const forget = ({ idInstances }: { idInstances: string[] }) => tokens.forget(idInstances);
  const resync = () => tokens.resync();
  ctx.events.on("instances:changed", forget);
  ctx.events.on("instances:resync", resync);
  return {
    tokens, intake,
    async close() {
      ctx.events.off("instances:changed", forget);
      ctx.events.off("instances:resync", resync);
      await intake.close();
      await tokens.close();
    },
  };
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

export async function handleProviderWebhook(hooks: ProviderHooks, body: unknown, authorization: string | undefined): Promise<WebhookResult> {
  // One parse for the webhook a storm is made of; anything else is told apart, or refused, by the envelope.
  const parsed = stateChangedSchema.safeParse(body);
  const typeWebhook = parsed.success ? parsed.data.typeWebhook : parseInput(envelopeSchema, body, "not a provider webhook").typeWebhook;
  if (typeWebhook !== "stateInstanceChanged") return { handled: false, typeWebhook, instances: [] };
  const event = parsed.success ? parsed.data : parseInput(stateChangedSchema, body, "not a provider webhook");
  const instanceIds = await hooks.tokens.authenticate(event.instanceData.idInstance, authorization);
  const state = toInstanceState(event.stateInstance);
  // A late retry of an old event must not overwrite newer knowledge (e.g. end a session as
  // authorized after the phone was unlinked again); a clock ahead of ours is capped at now.
  const at = new Date(Math.min(event.timestamp * 1000, Date.now()));
  const instances = await Promise.all(instanceIds.map((instanceId) => hooks.intake.submit({ instanceId, state, at })));
  return { handled: true, typeWebhook, instances };
}
