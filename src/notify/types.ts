/** The events operators are told about, as named in webhooks, the outbox and the docs. */
export const EVENT_TYPES = [
  "qr.updated",
  "session.authorized",
  "session.timed_out",
  "session.failed",
  "session.already_logged",
  "session.wrong_number",
  /**
   * A provider state an operator must act on (blocked, yellowCard, a `starting` that outlived its
   * reboot, a phone offline for days), or its webhook settings changed after a re-link (`reason`).
   */
  "instance.alert",
  /** The state an `instance.alert` was about has ended. */
  "instance.recovered",
  /** Someone holding the live link asked for a pairing code: the number (masked) and what they got. Webhooks only. */
  "pairing.requested",
  /** A channel in digest mode: the events it was held back, many instances' in one message (notify/digests.ts). */
  "digest",
  /** More of the fleet logged out at once than the storm threshold allows (fleet/instances/storm.ts). */
  "fleet.incident",
  /** The incident is over: logouts are back under the threshold. */
  "fleet.recovered",
] as const;
export type EventType = (typeof EVENT_TYPES)[number];
/** The events about the fleet rather than one instance. */
export type FleetEventType = "digest" | "fleet.incident" | "fleet.recovered";
/** The events about one instance. */
export type InstanceEventType = Exclude<EventType, FleetEventType>;

export function isFleetEventType(type: string): type is FleetEventType {
  return type === "digest" || type === "fleet.incident" || type === "fleet.recovered";
}

export function isEventType(value: string): value is EventType {
  return (EVENT_TYPES as readonly string[]).includes(value);
}

/** What one try of a delivery (one send through its channel) came to; the outbox decides what happens next. */
export type TryResult =
  | { kind: "sent"; status: number | null; body: string | null }
  | {
      kind: "retryable" | "permanent";
      status: number | null;
      body: string | null;
      error: string;
      /** retryable: the receiver's Retry-After (429, 503), in ms; it sets the next try's time. */
      retryAfterMs?: number;
      /** permanent: the receiver answered 410 Gone, so the channel is disabled. */
      gone?: boolean;
    };

/** Stored provider responses are capped: enough to debug, never a payload dump. */
export const RESPONSE_BODY_MAX = 1024;

export function truncateBody(text: string): string {
  // PostgreSQL text cannot hold NUL; a receiver may answer anything.
  const clean = text.replace(/\u0000/g, "");
  return clean.length > RESPONSE_BODY_MAX ? clean.slice(0, RESPONSE_BODY_MAX) : clean;
}

/** An event as the senders see it: the stored row with its instance and session, no secrets. */
export interface EventView {
  id: string;
  type: InstanceEventType;
  createdAt: Date;
  attempt: number | null;
  qrSequence: number | null;
  /** The event's stored payload (what recordEvent was given as `data`). */
  data: Record<string, unknown>;
  instance: { id: string; idInstance: string; label: string | null; expectedPhone: string | null };
  session: {
    id: string;
    trigger: string;
    status: string;
    attempt: number;
    maxAttempts: number;
    phone: string | null;
    errorCode: string | null;
    error: string | null;
  } | null;
}

/** One event a digest carries, with what the digest says of its instance. */
export interface DigestItem {
  view: EventView;
  /** Since when the instance has been unlinked, as known when the digest is sent; null while linked. */
  unlinkedSince: Date | null;
  /** The instance's live page, for an item whose session is still open; set by the kind that sends. */
  liveUrl: string | null;
}

/** An event about the fleet as the senders see it: a digest (its events, oldest first), or an incident and its end. */
export interface FleetView {
  id: string;
  type: FleetEventType;
  createdAt: Date;
  /** A digest: `since`, the start of the stretch it covers (ISO), and `storm` when an incident made it one. */
  data: Record<string, unknown>;
  /** A digest's events; none for the others. */
  items: DigestItem[];
}

/** What one delivery carries: one instance's event, or one about the fleet. */
export type DeliveryView = EventView | FleetView;

export const isFleetView = (view: DeliveryView): view is FleetView => "items" in view;

/** How long a QR can be scanned after it arrives: the provider rotates it about every 20 s. */
export const QR_VALIDITY_MS = 20_000;

/** A stored QR image as a message shows it. */
export interface QrView {
  png: Buffer;
  sequence: number;
  receivedAt: Date;
  /** When this image stops being scannable (it rotates). */
  validUntil: Date;
}
