import type { Db } from "../db.js";
import { isEventType, isFleetEventType, type FleetEventType, type FleetView, type EventView, type InstanceEventType } from "./types.js";

/** What the senders read of a stored event: its instance and session, never a secret. */
export const EVENT_INCLUDE = {
  instance: { select: { id: true, idInstance: true, label: true, expectedPhone: true, unlinkedSince: true } },
  session: { select: { id: true, trigger: true, status: true, attempt: true, maxAttempts: true, phone: true, errorCode: true, error: true } },
} as const;

interface StoredEvent {
  id: string;
  type: string;
  createdAt: Date;
  attempt: number | null;
  qrSequence: number | null;
  payload: unknown;
  instance: (EventView["instance"] & { unlinkedSince: Date | null }) | null;
  session: EventView["session"];
}

const payloadOf = (e: { payload: unknown }): Record<string, unknown> =>
  e.payload !== null && typeof e.payload === "object" && !Array.isArray(e.payload) ? (e.payload as Record<string, unknown>) : {};

/**
 * A stored instance event as senders see it, or null without its instance. One of a type this
 * version does not know is shown as a session.failed would be.
 */
export function eventViewOf(e: StoredEvent): EventView | null {
  if (!e.instance) return null;
  const { unlinkedSince: _, ...instance } = e.instance;
  const type: InstanceEventType = isEventType(e.type) && !isFleetEventType(e.type) ? e.type : "session.failed";
  return { id: e.id, type, createdAt: e.createdAt, attempt: e.attempt, qrSequence: e.qrSequence, data: payloadOf(e), instance, session: e.session };
}

/**
 * An event about the fleet as senders see it. A digest carries the events it took, oldest first;
 * of a session's QR updates only the newest is kept: the others were replaced before anyone could scan them.
 */
export async function loadFleetView(
  db: Db, deliveryId: string, event: Pick<StoredEvent, "id" | "createdAt" | "payload"> & { type: FleetEventType },
): Promise<FleetView> {
  const base = { id: event.id, type: event.type, createdAt: event.createdAt, data: payloadOf(event) };
  if (event.type !== "digest") return { ...base, items: [] };
  const rows = await db.delivery.findMany({
    where: { digestId: deliveryId },
    orderBy: { createdAt: "asc" },
    select: { event: { include: EVENT_INCLUDE } },
  });
  const newestQr = new Map<string, string>();
  for (const { event: e } of rows) if (e.type === "qr.updated" && e.sessionId) newestQr.set(e.sessionId, e.id);
  const items = rows.flatMap(({ event: e }) => {
    if (e.type === "qr.updated" && e.sessionId && newestQr.get(e.sessionId) !== e.id) return [];
    const view = eventViewOf(e);
    return view ? [{ view, unlinkedSince: e.instance?.unlinkedSince ?? null, liveUrl: null }] : [];
  });
  return { ...base, items };
}
