import { z } from "zod";
import type { ChannelKind, DeliveryStatus } from "../db.js";
import { maskSecrets } from "../log.js";
import type { FleetContext } from "./context.js";
import { parseInput } from "./validate.js";


/** What the CLI and the API show of the outbox: where a delivery went, never the webhook secret. */
export interface DeliveryView {
  id: string;
  eventType: string;
  instanceId: string;
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

export const DELIVERY_STATUSES: readonly DeliveryStatus[] = ["pending", "sent", "failed", "expired"];

const filterSchema = z
  .object({
    session: z.uuid("must be a session id (a UUID)").optional(),
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
