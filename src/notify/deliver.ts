import type { Db } from "../db.js";
import { channelInfo } from "./channels.js";
import { recordTry, tryDelivery, type DeliveryTry, type TryDeps } from "./delivery-try.js";
import { CHANNEL_KINDS, type QrCandidates } from "./kinds/index.js";
import { permanent } from "./send.js";
import { isEventType, isFleetEventType, isFleetView, QR_VALIDITY_MS, type DeliveryView, type FleetView, type QrView, type TryResult } from "./types.js";
import { eventViewOf, EVENT_INCLUDE, loadFleetView } from "./views.js";
import { holdAgain } from "./digests.js";
import { isUuid } from "../lib/uuid.js";

/**
 * Sends one Delivery row from the database: a retry, or one recovered after its process died.
 * The row, not the queue job, is the truth: a delivery already sent, failed or expired is never
 * sent again, and a claim (a lease on `nextTryAt`) keeps two runs of the same job from
 * sending at once. The try itself is delivery-try.ts's, as for a first try (dispatcher.ts).
 */

export interface DeliverDeps extends TryDeps {
  db: Db;
  /**
   * How long a run holds a delivery while sending, in ms. It must outlast any one send (webhook
   * timeout; SMTP connect + greeting + socket bounds, plus a wait for a pooled connection), or a
   * second run could send too. Default: the larger of 120000 and webhookTimeoutMs + 30000
   */
  leaseMs?: number;
}

/** sent, failed and expired are final; retry asks to be run again; noop means nothing was done (already final, gone). */
export type DeliveryOutcome = "sent" | "failed" | "expired" | "retry" | "noop";

export interface DeliveryResult {
  status: DeliveryOutcome;
  /** With "retry": run sendDelivery again for this delivery after this long. */
  retryInMs?: number;
}

/** What a try is shown of an event whose instance was removed: nothing is sent for it. */
const GONE: FleetView = { id: "", type: "digest", createdAt: new Date(0), data: {}, items: [] };

/** A job may fire a little early (clocks of Redis and this host differ); that is not a second run. */
const EARLY_TOLERANCE_MS = 1000;

type Loaded = NonNullable<Awaited<ReturnType<typeof load>>>;

export async function sendDelivery(deps: DeliverDeps, deliveryId: string, now: Date = new Date()): Promise<DeliveryResult> {
  const d = isUuid(deliveryId) ? await load(deps.db, deliveryId) : null;
  if (!d || d.status !== "pending") return { status: "noop" };
  const held = await claim(deps, d.id, now);
  if (held !== true) return held;
  const waitMs = handOffWaitMs(deps, d, now);
  if (waitMs > 0) return { status: "retry", retryInMs: waitMs };
  const { type } = d.event;
  const view = isFleetEventType(type) ? await loadFleetView(deps.db, d.id, { ...d.event, type }) : eventViewOf(d.event);
  const t: DeliveryTry = {
    deliveryId: d.id, channel: channelInfo(deps.send.box, d.channel), view: view ?? GONE, tries: d.tries, qrs: () => storedQrs(deps.db, view), receivedAt: null,
  };
  const refused = view ? refusal(d) : permanent("its instance is gone");
  const outcome = refused ? await recordTry(deps, t, refused, null, now) : await tryDelivery(deps, t, now);
  if (refused === INTERRUPTED_EMAIL && view?.type === "digest") await holdAgain(deps.db, d.id);
  return outcome.status === "retry" ? { status: "retry", retryInMs: outcome.retryInMs } : { status: outcome.status };
}

/** Why the row is failed without a try, or null. */
function refusal(d: Loaded): TryResult | null {
  if (!isEventType(d.event.type)) return permanent(`unknown event type ${d.event.type}`);
  if (!d.channel.enabled) return permanent("the channel was disabled");
  return d.handedOffAt && !CHANNEL_KINDS[d.channel.kind].repeatable ? INTERRUPTED_EMAIL : null;
}

/** An email handed to SMTP by a run that may still be writing SMTP's answer (PostgreSQL restarting) is its until then. */
function handOffWaitMs(deps: DeliverDeps, d: Loaded, now: Date): number {
  if (!d.handedOffAt || CHANNEL_KINDS[d.channel.kind].repeatable) return 0;
  return d.handedOffAt.getTime() + handOffResultMs(leaseOf(deps)) - now.getTime();
}

function load(db: Db, id: string) {
  return db.delivery.findUnique({
    where: { id },
    include: {
      channel: { select: { id: true, kind: true, address: true, secretCiphertext: true, enabled: true, failingSince: true } },
      event: { include: EVENT_INCLUDE },
    },
  });
}

/** True when this run holds the delivery; otherwise what to tell the caller. */
async function claim(deps: DeliverDeps, id: string, now: Date): Promise<true | DeliveryResult> {
  const { count } = await deps.db.delivery.updateMany({
    where: { id, status: "pending", nextTryAt: { lte: new Date(now.getTime() + EARLY_TOLERANCE_MS) } },
    data: { nextTryAt: new Date(now.getTime() + leaseOf(deps)) },
  });
  if (count === 1) return true;
  const row = await deps.db.delivery.findUnique({ where: { id }, select: { status: true, nextTryAt: true } });
  if (!row || row.status !== "pending") return { status: "noop" };
  return { status: "retry", retryInMs: Math.max(0, row.nextTryAt.getTime() - now.getTime()) };
}

/**
 * How long the sender of an email keeps trying to record SMTP's answer, from the hand-off: two
 * leases, so a PostgreSQL restart that outlasts one lease still ends `sent`. Until then no other
 * run takes the email for interrupted.
 */
export const handOffResultMs = (leaseMs: number) => 2 * leaseMs;

const leaseOf = (deps: DeliverDeps) => deps.leaseMs ?? Math.max(120_000, deps.send.webhookTimeoutMs + 30_000);

/** The images a qr.updated may show, as stored: the one it announced and its attempt's newest. */
async function storedQrs(db: Db, view: DeliveryView | null): Promise<QrCandidates> {
  const s = !view || isFleetView(view) ? null : view.session;
  if (!view || isFleetView(view) || !s || s.status !== "running" || s.attempt !== view.attempt) return { open: false, announced: null, latest: null };
  const select = { png: true, sequence: true, receivedAt: true } as const;
  const latest = await db.qrCode.findFirst({ where: { sessionId: s.id, attempt: s.attempt }, orderBy: { sequence: "desc" }, select });
  const announced =
    latest?.sequence === view.qrSequence
      ? latest
      : await db.qrCode.findUnique({ where: { sessionId_sequence: { sessionId: s.id, sequence: view.qrSequence ?? -1 } }, select });
  return { open: true, announced: announced && qrView(announced), latest: latest && qrView(latest) };
}

const validUntil = (qr: { receivedAt: Date }) => new Date(qr.receivedAt.getTime() + QR_VALIDITY_MS);

function qrView(qr: { png: Uint8Array; sequence: number; receivedAt: Date }): QrView {
  return { png: Buffer.from(qr.png), sequence: qr.sequence, receivedAt: qr.receivedAt, validUntil: validUntil(qr) };
}

/**
 * SMTP cannot be asked whether it got a message, so a run that died between handing an email
 * over and recording the result leaves it unknown. Email is at most once: a person must not get
 * the same message twice. (A webhook is resent with the same webhook-id: receivers deduplicate.)
 */
const INTERRUPTED_EMAIL = permanent("interrupted while handing the email to SMTP; not resent, so it is never delivered twice");
