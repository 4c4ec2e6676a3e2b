import { z } from "zod";
import type { ChannelKind, DeliveryStatus } from "../../db.js";
import { maskSecrets } from "../../log.js";
import { enableChannel as enableChannelRow } from "../../notify/channel-health.js";
import { REPLAY_MAX, replayDelivery, replayFailed } from "../../notify/replay.js";
import type { FleetContext } from "../context.js";
import { ConflictError, NotFoundError } from "../errors.js";
import { parseInput } from "../validate.js";
import { uuidSchema } from "../../lib/uuid.js";

/** What the CLI and the API show of the outbox: where a delivery went, never the webhook secret. */
export interface DeliveryView {
  id: string;
  eventType: string;
  instanceId: string | null;
  sessionId: string | null;
  channelKind: ChannelKind;
  /** The email address or webhook URL, with any credential in it masked. */
  address: string;
  status: DeliveryStatus;
  tries: number;
  lastError: string | null;
  responseStatus: number | null;
  sentAt: Date | null;
  createdAt: Date;
  nextTryAt: Date;
}

export const DELIVERY_STATUSES: readonly DeliveryStatus[] = ["pending", "sent", "failed", "expired", "held", "digested"];

const filterSchema = z
  .object({
    session: uuidSchema("must be a session id (a UUID)").optional(),
    status: z
      .enum(DELIVERY_STATUSES as [DeliveryStatus, ...DeliveryStatus[]], `must be one of ${DELIVERY_STATUSES.join(", ")}`)
      .optional(),
    limit: z.number().int().min(1).max(10_000).optional(),
  })
  .strict();

/** Checked here, so the CLI and the API send what they were given. */
export interface DeliveryFilter {
  session?: string;
  status?: string;
  limit?: number;
}

export async function listDeliveries(ctx: FleetContext, filter: DeliveryFilter = {}): Promise<DeliveryView[]> {
  const f = parseInput(filterSchema, filter);
  const rows = await ctx.db.delivery.findMany({
    where: { ...(f.status && { status: f.status }), ...(f.session && { event: { sessionId: f.session } }) },
    include: {
      event: { select: { type: true, instanceId: true, sessionId: true } },
      channel: { select: { kind: true, address: true } },
    },
    orderBy: [{ createdAt: "desc" }, { id: "asc" }],
    take: f.limit ?? 100,
  });
  return rows.map((d) => ({
    id: d.id,
    eventType: d.event.type,
    instanceId: d.event.instanceId,
    sessionId: d.event.sessionId,
    channelKind: d.channel.kind,
    address: maskSecrets(d.channel.address),
    status: d.status,
    tries: d.tries,
    lastError: d.lastError === null ? null : maskSecrets(d.lastError),
    responseStatus: d.responseStatus,
    sentAt: d.sentAt,
    createdAt: d.createdAt,
    nextTryAt: d.nextTryAt,
  }));
}

const uuid = (what: string) => uuidSchema(`must be ${what} id (a UUID)`);
const idSchema = z.object({ id: uuid("a delivery") }).strict();
const replaySchema = z
  .object({
    channel: uuid("a channel").optional(),
    since: z.coerce.date("must be a date and time, e.g. 2026-12-01T00:00:00Z").optional(),
  })
  .strict();

export interface ReplayView {
  /** The deliveries now pending again, with their tries reset. */
  replayed: string[];
  /** True when more matched than one replay moves (REPLAY_MAX): run it again. */
  more: boolean;
}

/**
 * Sends one delivery again by hand, under the same webhook-id. Refused while it is pending (being
 * sent or waiting for its next try: it would be doubled) and while its channel is disabled.
 */
export async function retryDelivery(ctx: FleetContext, id: string): Promise<ReplayView> {
  const v = parseInput(idSchema, { id });
  const refusal = await replayDelivery(ctx.sql, ctx.queues, v.id);
  if (refusal === "not_found") throw new NotFoundError(`no delivery ${v.id}`);
  if (refusal === "pending") throw new ConflictError(`delivery ${v.id} is pending already: it is being sent or waits for its next try`);
  if (refusal === "channel_disabled") throw new ConflictError(`the channel of delivery ${v.id} is disabled: enable it first (qrfleet operator enable-channel)`);
  return { replayed: [v.id], more: false };
}

export interface ReplayInput {
  /** Only this channel's (a channel id). */
  channel?: string;
  /** Only deliveries created at or after this (ISO 8601). */
  since?: string | Date;
}

/** Sends every failed delivery again (of one channel, since a time), up to REPLAY_MAX at once. */
export async function retryFailedDeliveries(ctx: FleetContext, input: ReplayInput = {}): Promise<ReplayView> {
  const v = parseInput(replaySchema, input);
  const replayed = await replayFailed(ctx.sql, ctx.queues, { channelId: v.channel, since: v.since });
  return { replayed, more: replayed.length === REPLAY_MAX };
}

/** Enables a channel that qrfleet (or an admin) disabled; it gets new events from now on. */
export async function enableChannel(ctx: FleetContext, channelId: string): Promise<{ id: string; wasDisabled: boolean }> {
  const v = parseInput(z.object({ id: uuid("a channel") }).strict(), { id: channelId });
  const row = await enableChannelRow(ctx.sql, v.id);
  if (!row) throw new NotFoundError(`no channel ${v.id}`);
  ctx.log.info({ channelId: row.id, wasDisabled: row.wasDisabled }, "channel enabled");
  return row;
}
