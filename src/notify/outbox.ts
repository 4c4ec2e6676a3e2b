import type { ChannelKind, Prisma } from "../db.js";
import type { EventType } from "./types.js";

/**
 * The outbox: an event and its deliveries are written in the transaction that records what the
 * event announces, so a committed QR or outcome always has its deliveries and a rolled-back one
 * has none. Sending happens later, one `notify` job per delivery id.
 */

export type Tx = Prisma.TransactionClient;

export interface RecordEventInput {
  type: EventType;
  instanceId: string;
  sessionId: string | null;
  attempt: number;
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
  /** After this a delivery of the event is worthless; qr.updated is also bounded by rotation. */
  validUntil?: Date;
}

export interface RoutingOptions {
  /** Tier N (N ≥ 2) hears about an instance once attempt > (N − 1) × escalateAfter. */
  escalateAfter: number;
}

interface Recipient {
  channelId: string;
  kind: ChannelKind;
}

/** Writes the event and one delivery per channel that should get it; returns the delivery ids. */
export async function recordEvent(tx: Tx, input: RecordEventInput, opts: RoutingOptions): Promise<string[]> {
  const event = await tx.event.create({
    data: {
      type: input.type,
      instanceId: input.instanceId,
      sessionId: input.sessionId,
      attempt: input.attempt,
      qrSequence: input.qrSequence ?? null,
      payload: storedPayload(input),
      validUntil: input.validUntil ?? null,
    },
    select: { id: true },
  });
  const recipients = (await recipientsOf(tx, input.instanceId, input.attempt, opts)).filter((r) => wants(r.kind, input));
  if (recipients.length === 0) return [];
  const rows = await tx.delivery.createManyAndReturn({
    data: recipients.map((r) => ({ eventId: event.id, channelId: r.channelId })),
    skipDuplicates: true,
    select: { id: true },
  });
  return rows.map((r) => r.id);
}

function storedPayload(input: RecordEventInput): Prisma.InputJsonObject {
  // A JSON round trip turns Dates into ISO strings and drops undefined, as the webhook body will.
  const data = JSON.parse(JSON.stringify(input.data ?? {})) as Prisma.InputJsonObject;
  if (input.type === "qr.updated") return { ...data, firstOfAttempt: input.firstOfAttempt ?? false };
  if (input.type === "session.timed_out" || input.type === "session.failed") return { ...data, final: input.final ?? true };
  return data;
}

export function tierIsDue(tier: number, attempt: number, escalateAfter: number): boolean {
  return tier <= 1 || attempt > (tier - 1) * escalateAfter;
}

/**
 * Email is for a human who must act: the first QR of an attempt (the live link does the rest),
 * and the endings that need someone. Webhooks are for machines and get everything.
 */
export function wants(kind: ChannelKind, input: Pick<RecordEventInput, "type" | "firstOfAttempt" | "final">): boolean {
  if (kind === "webhook") return true;
  switch (input.type) {
    case "qr.updated":
      return input.firstOfAttempt === true;
    case "session.timed_out":
    case "session.failed":
      return input.final !== false;
    case "session.wrong_number":
      return true;
    default:
      return false;
  }
}

/**
 * Channels of the instance's operators whose tier is due; without any assignment, the fleet-wide
 * defaults (operators with no instance of their own). One query: this runs for every QR stored.
 */
async function recipientsOf(tx: Tx, instanceId: string, attempt: number, opts: RoutingOptions): Promise<Recipient[]> {
  const rows = await tx.$queryRaw<Array<{ channelId: string; kind: ChannelKind; tier: number | null }>>`
    SELECT c.id::text AS "channelId", c.kind::text AS kind, a.tier
    FROM "Channel" c
    LEFT JOIN "Assignment" a ON a."operatorId" = c."operatorId" AND a."instanceId" = ${instanceId}::uuid
    WHERE c.enabled AND (
      a."instanceId" IS NOT NULL
      OR (NOT EXISTS (SELECT 1 FROM "Assignment" i WHERE i."instanceId" = ${instanceId}::uuid)
          AND NOT EXISTS (SELECT 1 FROM "Assignment" o WHERE o."operatorId" = c."operatorId"))
    )`;
  return rows
    .filter((r) => r.tier === null || tierIsDue(r.tier, attempt, opts.escalateAfter))
    .map((r) => ({ channelId: r.channelId, kind: r.kind }));
}
