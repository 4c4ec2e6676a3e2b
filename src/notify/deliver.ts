import type { ChannelKind, Db } from "../db.js";
import type { Logger } from "../log.js";
import type { ChannelHealth } from "./channel-health.js";
import { channelInfo } from "./channels.js";
import { afterTry, DEFAULT_RETRY_POLICY, type RetryPolicy } from "./schedule.js";
import { emailFor, permanent, sendWebhook, type SendDeps } from "./send.js";
import { isEventType, QR_VALIDITY_MS, type TryResult, type EventView, type QrView } from "./types.js";
import { isUuid } from "../uuid.js";
import { writePersistently } from "../persistent-write.js";

/**
 * Sends one Delivery row from the database: a retry, or one recovered after its process died.
 * The row, not the queue job, is the truth: a delivery already sent, failed or expired is never
 * sent again, and a claim (a lease on `nextTryAt`) keeps two runs of the same job from
 * sending at once. First tries do not come through here (see dispatcher.ts).
 */

export interface DeliverDeps extends SendDeps {
  db: Db;
  log: Logger;
  /** Retry schedules and their multiplier. Default: DEFAULT_RETRY_POLICY */
  retry?: Partial<RetryPolicy>;
  /**
   * How long a run holds a delivery while sending, in ms. It must outlast any one send (webhook
   * timeout; SMTP connect + greeting + socket bounds, plus a wait for a pooled connection), or a
   * second run could send too. Default: the larger of 120000 and webhookTimeoutMs + 30000
   */
  leaseMs?: number;
  /** Told about every delivery this run tried or expired (metrics), as the dispatcher tells of first tries. */
  onResult?(r: { deliveryId: string; kind: ChannelKind; status: DeliveryOutcome }): void;
  /** Told what each try came to: disables a channel that answers 410 or fails for too long. */
  health?: ChannelHealth;
}

/** sent, failed and expired are final; retry asks to be run again; noop means nothing was done (already final, gone). */
export type DeliveryOutcome = "sent" | "failed" | "expired" | "retry" | "noop";

export interface DeliveryResult {
  status: DeliveryOutcome;
  /** With "retry": run sendDelivery again for this delivery after this long. */
  retryInMs?: number;
}

/** A job may fire a little early (clocks of Redis and this host differ); that is not a second run. */
const EARLY_TOLERANCE_MS = 1000;

type Loaded = NonNullable<Awaited<ReturnType<typeof load>>>;
type Freshness = { ok: true; qr: QrView | null } | { ok: false; reason: string };

export async function sendDelivery(deps: DeliverDeps, deliveryId: string, now: Date = new Date()): Promise<DeliveryResult> {
  const d = isUuid(deliveryId) ? await load(deps.db, deliveryId) : null;
  if (!d || d.status !== "pending") return { status: "noop" };
  const held = await claim(deps, d.id, now);
  if (held !== true) return held;
  const result = await sendHeld(deps, d, now);
  deps.onResult?.({ deliveryId: d.id, kind: d.channel.kind, status: result.status });
  return result;
}

async function sendHeld(deps: DeliverDeps, d: Loaded, now: Date): Promise<DeliveryResult> {
  const log = deps.log.child({ deliveryId: d.id, eventId: d.eventId, channelId: d.channelId, kind: d.channel.kind });
  const view = toView(d);
  if (!view) return finish(deps, d, now, permanent(`unknown event type ${d.event.type}`), null, log);
  if (!d.channel.enabled) return finish(deps, d, now, permanent("the channel was disabled"), null, log);
  if (d.channel.kind === "email" && d.handedOffAt) {
    // Its sender may still be writing SMTP's answer (PostgreSQL restarting): it has until then.
    const stillItsMs = d.handedOffAt.getTime() + handOffResultMs(leaseOf(deps)) - now.getTime();
    if (stillItsMs > 0) return { status: "retry", retryInMs: stillItsMs };
    return finish(deps, d, now, INTERRUPTED_EMAIL, null, log);
  }
  const fresh = await freshness(deps, d, view);
  if (!fresh.ok) return expire(deps, d.id, fresh.reason, log);
  const result = await sendOnce(deps, d, view, fresh.qr, now);
  const outcome = await finish(deps, d, now, result, fresh.qr?.validUntil ?? null, log);
  await deps.health?.afterTry(d.channel, result);
  return outcome;
}

function load(db: Db, id: string) {
  return db.delivery.findUnique({
    where: { id },
    include: {
      channel: { select: { id: true, kind: true, address: true, secretCiphertext: true, enabled: true, failingSince: true } },
      event: {
        include: {
          instance: { select: { id: true, idInstance: true, label: true, expectedPhone: true } },
          session: {
            select: { id: true, trigger: true, status: true, attempt: true, maxAttempts: true, phone: true, errorCode: true, error: true },
          },
        },
      },
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

const leaseOf = (deps: DeliverDeps) => deps.leaseMs ?? Math.max(120_000, deps.webhookTimeoutMs + 30_000);

function toView(d: Loaded): EventView | null {
  const e = d.event;
  if (!isEventType(e.type)) return null;
  const data = e.payload !== null && typeof e.payload === "object" && !Array.isArray(e.payload) ? (e.payload as Record<string, unknown>) : {};
  return {
    id: e.id,
    type: e.type,
    createdAt: e.createdAt,
    attempt: e.attempt,
    qrSequence: e.qrSequence,
    data,
    instance: e.instance,
    session: e.session,
  };
}

/**
 * A qr.updated is worth sending only while its QR can still be scanned: same attempt, session
 * running. A webhook announces one exact image, so a newer image ends it too; an email carries
 * the live link and the freshest image, so only the attempt's end does.
 */
async function freshness(deps: DeliverDeps, d: Loaded, view: EventView): Promise<Freshness> {
  if (view.type !== "qr.updated") return { ok: true, qr: null };
  const s = view.session;
  if (!s || s.status !== "running" || s.attempt !== view.attempt) return { ok: false, reason: "its session attempt has ended" };
  const latest = await deps.db.qrCode.findFirst({
    where: { sessionId: s.id, attempt: s.attempt },
    orderBy: { sequence: "desc" },
    select: { png: true, sequence: true, receivedAt: true },
  });
  const announced =
    latest?.sequence === view.qrSequence
      ? latest
      : await deps.db.qrCode.findUnique({
          where: { sessionId_sequence: { sessionId: s.id, sequence: view.qrSequence ?? -1 } },
          select: { png: true, sequence: true, receivedAt: true },
        });
  if (d.channel.kind === "webhook") {
    if (!announced) return { ok: false, reason: "its QR image is gone" };
    if (latest && latest.sequence > announced.sequence) return { ok: false, reason: "a newer QR superseded it" };
  }
  const shown = d.channel.kind === "email" ? (latest ?? announced) : announced;
  return { ok: true, qr: shown ? qrView(shown) : null };
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

async function sendOnce(deps: DeliverDeps, d: Loaded, view: EventView, qr: QrView | null, now: Date): Promise<TryResult> {
  const channel = channelInfo(deps.box, d.channel);
  if (channel.kind === "webhook") return sendWebhook(deps, channel, d.id, view, qr, now);
  const message = emailFor(deps, channel, view, qr, now);
  await deps.db.delivery.update({ where: { id: d.id }, data: { handedOffAt: now } });
  return deps.mailer.send(message);
}

async function expire(deps: DeliverDeps, id: string, reason: string, log: Logger): Promise<DeliveryResult> {
  await deps.db.delivery.updateMany({ where: { id, status: "pending" }, data: { status: "expired", lastError: `expired: ${reason}` } });
  log.info({ status: "expired", reason }, "delivery expired unsent");
  return { status: "expired" };
}

async function finish(
  deps: DeliverDeps,
  d: Loaded,
  now: Date,
  result: TryResult,
  validUntil: Date | null,
  log: Logger,
): Promise<DeliveryResult> {
  const tries = d.tries + 1;
  const response = { responseStatus: result.status, responseBody: result.body, handedOffAt: null };
  const where = { id: d.id, status: "pending" as const };
  const type = isEventType(d.event.type) ? d.event.type : "session.failed";
  const verdict = afterTry(type, tries, result, validUntil, { ...DEFAULT_RETRY_POLICY, ...deps.retry }, now);
  // The peer has answered: the answer is worth waiting for PostgreSQL to record, for as long as
  // no other run takes the row (else the webhook goes again, or the email counts as interrupted).
  const record = (data: Parameters<Db["delivery"]["updateMany"]>[0]["data"]) =>
    writePersistently(() => deps.db.delivery.updateMany({ where, data }), {
      forMs: Math.max(0, now.getTime() + handOffResultMs(leaseOf(deps)) - Date.now()),
      onRetry: (err) => log.warn({ err }, "could not record the delivery's result yet; trying again"),
    });
  switch (verdict.status) {
    case "sent":
      await record({ status: "sent", tries, sentAt: now, nextTryAt: now, lastError: null, ...response });
      log.info({ status: "sent", tries, responseStatus: result.status }, "delivery sent");
      return { status: "sent" };
    case "expired":
      await record({ status: "expired", tries, lastError: verdict.error, ...response });
      log.info({ status: "expired", tries, err: verdict.error }, "delivery expired: no retry fits in the QR's validity");
      return { status: "expired" };
    case "failed":
      await record({ status: "failed", tries, lastError: verdict.error, nextTryAt: now, ...response });
      log.warn({ status: "failed", tries, err: verdict.error }, "delivery failed");
      return { status: "failed" };
    case "retry":
      await record({ tries, lastError: verdict.error, nextTryAt: new Date(now.getTime() + verdict.delayMs), ...response });
      log.info({ status: "retry", tries, retryInMs: verdict.delayMs, err: verdict.error }, "delivery will be retried");
      return { status: "retry", retryInMs: verdict.delayMs };
  }
}
