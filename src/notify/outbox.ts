import type { ChannelKind, Prisma } from "../db.js";
import { CHANNEL_KINDS, type WantsInput } from "./kinds/index.js";
import { FLEET_WIDE_CHANNELS_SQL, recipientsSql } from "./routing.js";
import type { InstanceEventType } from "./types.js";

/**
 * The outbox: an event and its deliveries are written in the transaction that records what the
 * event announces, so a committed QR or outcome always has its deliveries and a rolled-back one
 * has none. This is the outbox for the rarer events (the provider's word, alerts); the per-QR
 * path and attempt outcomes write theirs in one statement each (fleet/sessions/qr-store.ts, fleet/sessions/attempts.ts).
 */

export type Tx = Prisma.TransactionClient;

export interface RecordEventInput {
  type: InstanceEventType;
  instanceId: string;
  sessionId: string | null;
  /** The session's attempt; null for an event about the instance itself. */
  attempt: number | null;
  /** qr.updated: the announced QR's sequence in its session. */
  qrSequence?: number;
  /** qr.updated: true for the first QR of its attempt, the only one that is emailed. */
  firstOfAttempt?: boolean;
  /**
   * session.timed_out / session.failed: false when another attempt follows (webhooks only);
   * the default true means the session is over and operators are emailed.
   */
  final?: boolean;
  /** Event-specific fields, merged into the webhook's `data` (JSON-safe values). */
  data: Record<string, unknown>;
  /**
   * Route to every escalation tier, not only those due at `attempt`: an alert about the
   * instance itself (instance.*) concerns everyone who looks after it.
   */
  everyTier?: boolean;
}

/** An attempt number past every tier's threshold (tiers are small integers). */
const EVERY_TIER_ATTEMPT = 2_147_483_647;

export interface RoutingOptions {
  /** Tier N (N ≥ 2) hears about an instance once attempt > (N − 1) × escalateAfter. */
  escalateAfter: number;
}

interface Recipient {
  channelId: string;
  kind: ChannelKind;
  /** Waits for the channel's next digest. */
  held: boolean;
}

/** Writes the event and one delivery per channel that should get it; returns the ids of those to send now (not held for a digest). */
export async function recordEvent(tx: Tx, input: RecordEventInput, opts: RoutingOptions): Promise<string[]> {
  const event = await tx.event.create({
    data: {
      type: input.type,
      instanceId: input.instanceId,
      sessionId: input.sessionId,
      attempt: input.attempt,
      qrSequence: input.qrSequence ?? null,
      payload: storedPayload(input),
    },
    select: { id: true },
  });
  const routeAt = input.everyTier ? EVERY_TIER_ATTEMPT : (input.attempt ?? 1);
  const recipients = (await recipientsOf(tx, input.instanceId, routeAt, opts)).filter((r) => wants(r.kind, { ...input, digest: r.held }));
  if (recipients.length === 0) return [];
  const rows = await tx.delivery.createManyAndReturn({
    data: recipients.map((r) => ({ eventId: event.id, channelId: r.channelId, status: r.held ? ("held" as const) : ("pending" as const) })),
    skipDuplicates: true,
    select: { id: true, status: true },
  });
  return rows.filter((r) => r.status === "pending").map((r) => r.id);
}

/**
 * Writes an event about the fleet (an incident, its end) and a delivery to each fleet-wide
 * operator's channel, to be sent at once; returns the delivery ids.
 */
export async function recordFleetEvent(tx: Tx, type: "fleet.incident" | "fleet.recovered", data: Record<string, unknown>): Promise<string[]> {
  const event = await tx.event.create({ data: { type, payload: JSON.parse(JSON.stringify(data)) as Prisma.InputJsonObject }, select: { id: true } });
  const rows = await tx.$queryRawUnsafe<Array<{ id: string }>>(
    `INSERT INTO "Delivery" (id, "eventId", "channelId", "createdAt", "updatedAt")
     SELECT gen_random_uuid(), $1::uuid, f.id, now(), now() FROM (${FLEET_WIDE_CHANNELS_SQL}) f RETURNING id::text AS id`,
    event.id,
  );
  return rows.map((r) => r.id);
}

/** The payload as stored: the webhook's `data` fields, plus the flags that say who gets it. */
export function storedPayload(input: Pick<RecordEventInput, "type" | "data" | "firstOfAttempt" | "final">): Prisma.InputJsonObject {
  // A JSON round trip turns Dates into ISO strings and drops undefined, as the webhook body will.
  const data = JSON.parse(JSON.stringify(input.data ?? {})) as Prisma.InputJsonObject;
  if (input.type === "qr.updated") return { ...data, firstOfAttempt: input.firstOfAttempt ?? false };
  if (input.type === "session.timed_out" || input.type === "session.failed") return { ...data, final: input.final ?? true };
  return data;
}

/** Whether a channel of `kind` hears of the event at all (notify/kinds). */
export function wants(kind: ChannelKind, input: WantsInput): boolean {
  return CHANNEL_KINDS[kind].wants(input);
}

/** The channels that should hear about the instance's event at this attempt (see routing.ts). */
async function recipientsOf(tx: Tx, instanceId: string, attempt: number, opts: RoutingOptions): Promise<Recipient[]> {
  return tx.$queryRawUnsafe<Recipient[]>(
    `SELECT r.id::text AS "channelId", r.kind::text AS kind, r.held FROM ${recipientsSql("$1::uuid", "$2::int", "$3::int")} r`,
    instanceId,
    attempt,
    opts.escalateAfter,
  );
}
