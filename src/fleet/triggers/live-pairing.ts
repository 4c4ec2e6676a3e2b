import type { Instance } from "../../db.js";
import { GreenApiError } from "../../greenapi/errors.js";
import { recordEvent } from "../../notify/outbox.js";
import { addNotifyJobs } from "../../queues.js";
import type { FleetContext } from "../context.js";
import { ALREADY_LINKED, isLinked } from "./live.js";
import { maskPhone } from "./phone-mask.js";
import { providerFor } from "../provider/provider.js";

/**
 * Pairing by phone number from the live page, which is public to whoever holds the link: one
 * provider call per instance per interval, across every daemon, taken before anything is said
 * about the number; and every request leaves a `pairing.requested` event with the number masked.
 */

export const PAIR_INTERVAL_MS = 10_000;

type Refusal = "already_linked" | "rate_limited" | "wrong_number" | "pairing_refused" | "invalid_token" | "provider_error";
export type PairingResult = { code: string } | { refused: Refusal; message: string };

/** A pairing code for `phoneNumber` from the provider, at most once per instance per PAIR_INTERVAL_MS. */
export async function requestPairingCode(ctx: FleetContext, instance: Instance, phoneNumber: string): Promise<PairingResult> {
  const result = await askProvider(ctx, instance, phoneNumber);
  if (!("refused" in result && result.refused === "rate_limited") || (await firstRefusalOfInterval(ctx, instance))) {
    await recordPairing(ctx, instance, phoneNumber, "code" in result ? "code" : result.refused);
  }
  return result;
}

async function askProvider(ctx: FleetContext, instance: Instance, phoneNumber: string): Promise<PairingResult> {
  // The link outlives the scan it was sent for: once a phone is linked it must not pair another.
  if (isLinked(instance)) return { refused: "already_linked", message: ALREADY_LINKED };
  // The interval comes before any answer about the number: a link holder cannot try numbers quickly.
  const first = await ctx.queues.connection.set(pairKey(ctx, instance, "turn"), "1", "PX", PAIR_INTERVAL_MS, "NX");
  if (first === null) return { refused: "rate_limited", message: "a code was just requested; wait a few seconds and try again" };
  if (instance.expectedPhone && instance.expectedPhone !== phoneNumber) {
    return { refused: "wrong_number", message: "this instance must be linked to another phone number; ask an admin if it has changed" };
  }
  const provider = providerFor(ctx, instance);
  if (!provider) return { refused: "invalid_token", message: "this instance's stored credentials cannot be used; tell an admin" };
  try {
    const answer = await provider.client.getAuthorizationCode(phoneNumber);
    if (answer.status && answer.code) return { code: answer.code };
    return { refused: "pairing_refused", message: "the provider gave no code: the instance may already be linked" };
  } catch (err) {
    if (!(err instanceof GreenApiError)) throw err;
    ctx.log.warn({ err, instanceId: instance.id }, "phone-number pairing failed");
    return err.transient
      ? { refused: "provider_error", message: "the provider did not answer properly; try again in a minute, or scan the QR code" }
      : { refused: "invalid_token", message: "the provider refused this instance's credentials; tell an admin" };
  }
}

/** Requests refused for the interval are recorded once per interval: a flood of them must not fill the event table. */
async function firstRefusalOfInterval(ctx: FleetContext, instance: Instance): Promise<boolean> {
  return (await ctx.queues.connection.set(pairKey(ctx, instance, "refused"), "1", "PX", PAIR_INTERVAL_MS, "NX")) !== null;
}

const pairKey = (ctx: FleetContext, instance: Instance, what: "turn" | "refused") => `${ctx.queues.prefix}:live-pair:${what}:${instance.id}`;

async function recordPairing(ctx: FleetContext, instance: Instance, phoneNumber: string, result: "code" | Refusal): Promise<void> {
  const deliveryIds = await ctx.db.$transaction((tx) =>
    recordEvent(
      tx,
      { type: "pairing.requested", instanceId: instance.id, sessionId: null, attempt: null, data: { phone: maskPhone(phoneNumber), result } },
      { escalateAfter: ctx.config.QRFLEET_ESCALATE_AFTER },
    ),
  );
  await addNotifyJobs(ctx.queues, deliveryIds);
}
