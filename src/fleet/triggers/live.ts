import type { Instance, QrSession, SessionStatus } from "../../db.js";
import { verifyLiveToken } from "../../notify/live-link.js";
import { isUuid } from "../../lib/uuid.js";
import type { FleetContext } from "../context.js";
import { isFleetError } from "../errors.js";
import { resolveInstance } from "../instances/instances.js";
import { maskedOrNull } from "./phone-mask.js";
import { findOpenSession, OPEN_STATUSES } from "../instances/open-session.js";
import { enqueueSession } from "../sessions/sessions.js";

/**
 * What the live page (`/live/<signed token>`) may see and do for one instance: open its link,
 * say what to show, start a session on an explicit request, follow one session, show the current
 * QR code, ask the provider for a pairing code. Only the start and the pairing code change
 * anything. The route in http/ only turns these into pages, JSON and an event stream.
 */

export type LiveAccess = { instance: Instance; expiresAt: Date } | { refused: "malformed" | "tampered" | "expired" | "gone" };

export async function openLiveLink(ctx: FleetContext, token: string): Promise<LiveAccess> {
  const check = verifyLiveToken(ctx.box.hmacKeys(), token, new Date(), ctx.config.QRFLEET_LIVE_LINK_TTL_S * 1000);
  if (!check.ok) return { refused: check.reason };
  try {
    return { instance: await resolveInstance(ctx.db, check.instanceId), expiresAt: check.expiresAt };
  } catch (err) {
    if (isFleetError(err)) return { refused: "gone" };
    throw err;
  }
}

/**
 * The session an event stream follows: the one the page names, else the instance's open one, else
 * none. It only reads: opening a link or its stream must never start a session, because mail
 * filters open every link of an email in a headless browser before the person does.
 */
export async function followSession(ctx: FleetContext, instance: Instance, hint: string | undefined): Promise<string | null> {
  if (hint && isUuid(hint)) {
    const found = await ctx.db.qrSession.findFirst({ where: { id: hint, instanceId: instance.id }, select: { id: true } });
    if (found) return found.id;
  }
  return (await findOpenSession(ctx, instance.id))?.id ?? null;
}

/** The provider last said a phone is linked: nothing to scan, nothing to pair. */
export const isLinked = (instance: Instance) => instance.lastState === "authorized";

/** The provider refused the instance's token: a session would fail at once, so an admin must act first. */
const needsAdmin = (instance: Instance) => instance.attention !== null;

/** The part of a session the page shows before it follows the stream. */
export type LiveSession = Pick<QrSession, "id" | "status" | "attempt" | "maxAttempts">;

/** What the page opens on of a session: where it stands, nothing of its run. */
const liveSession = ({ id, status, attempt, maxAttempts }: LiveSession): LiveSession => ({ id, status, attempt, maxAttempts });
type EndedSession = Pick<QrSession, "status" | "phone" | "error">;

/**
 * What the page opens on. A session queued or running is shown and followed; a linked instance
 * says so and offers nothing to start (whoever doubts it asks an admin: the fleet's own checks
 * start a session when the provider reports the phone logged out); otherwise a button starts one.
 */
export type LiveView =
  | { show: "session"; session: LiveSession; pairing: boolean }
  /** `phone` masked (maskPhone): whoever holds the link sees enough to recognise it, not to call it. */
  | { show: "linked"; phone: string | null }
  | { show: "needs_admin" }
  | { show: "start"; last: EndedSession | null };

export async function readLiveView(ctx: FleetContext, instance: Instance): Promise<LiveView> {
  const open = await findOpenSession(ctx, instance.id);
  if (open) return { show: "session", session: liveSession(open), pairing: !isLinked(instance) };
  if (isLinked(instance)) return { show: "linked", phone: await linkedPhone(ctx, instance.id) };
  if (needsAdmin(instance)) return { show: "needs_admin" };
  const last = await ctx.db.qrSession.findFirst({
    where: { instanceId: instance.id }, orderBy: { createdAt: "desc" }, select: { status: true, phone: true, error: true },
  });
  return { show: "start", last: last && { ...last, phone: maskedOrNull(last.phone) } };
}

export type LiveStart =
  | { session: LiveSession; created: boolean }
  | { refused: "already_linked" | "needs_admin"; message: string };

export const ALREADY_LINKED = "this instance is already linked to a phone; if WhatsApp on the phone says otherwise, ask an admin";

/** The page's Start button: a session for the instance, or the one already open (enqueueSession keeps one per instance). */
export async function startLiveSession(ctx: FleetContext, instance: Instance): Promise<LiveStart> {
  if (isLinked(instance)) return { refused: "already_linked", message: ALREADY_LINKED };
  if (needsAdmin(instance)) {
    return { refused: "needs_admin", message: "the provider refused this instance's credentials, so no code can be shown; tell an admin" };
  }
  const { session, created } = await enqueueSession(ctx, instance, "live");
  return { session: liveSession(session), created };
}


/** The phone the instance's latest scan linked, masked, if a session saw it (REST polling does not). */
async function linkedPhone(ctx: FleetContext, instanceId: string): Promise<string | null> {
  const s = await ctx.db.qrSession.findFirst({
    where: { instanceId, phone: { not: null } }, orderBy: { createdAt: "desc" }, select: { phone: true },
  });
  return maskedOrNull(s?.phone ?? null);
}

/** The PNG of a QR code of the instance's open session (the one the page follows, if named); null once it is not current. */
export async function currentQrPng(ctx: FleetContext, instanceId: string, sequence: number, hint: string | undefined): Promise<Buffer | null> {
  const open = await findOpenSession(ctx, instanceId);
  if (!open || (hint !== undefined && hint !== open.id)) return null;
  const code = await ctx.db.qrCode.findUnique({ where: { sessionId_sequence: { sessionId: open.id, sequence } }, select: { png: true } });
  return code ? Buffer.from(code.png) : null;
}

/** What one poll of the live page sees of the followed session; the QR fields only while an attempt is running. */
export interface LiveSnapshot {
  id: string;
  status: SessionStatus;
  attempt: number;
  maxAttempts: number;
  qrCount: number;
  dueAt: Date;
  /** The linked phone, masked (maskPhone). */
  phone: string | null;
  error: string | null;
  /** When the running attempt's scan window closes. */
  expiresAt: Date | null;
  /** The current QR code's sequence, if it belongs to the running attempt. */
  sequence: number | null;
}

const SNAPSHOT_FIELDS = { id: true, status: true, attempt: true, maxAttempts: true, qrCount: true, dueAt: true, phone: true, error: true } as const;

/** One primary-key read per poll; the attempt and QR rows only when the session moved. */
export async function readLiveSnapshot(ctx: FleetContext, sessionId: string, prev: LiveSnapshot | null): Promise<LiveSnapshot | null> {
  const found = await ctx.db.qrSession.findUnique({ where: { id: sessionId }, select: SNAPSHOT_FIELDS });
  if (!found) return null;
  const s = { ...found, phone: maskedOrNull(found.phone) };
  if (s.status !== "running") return { ...s, expiresAt: null, sequence: null };
  const unchanged = prev && prev.status === s.status && prev.attempt === s.attempt && prev.qrCount === s.qrCount && prev.expiresAt;
  if (unchanged) return { ...s, expiresAt: prev.expiresAt, sequence: prev.sequence };
  const [attempt, code] = await Promise.all([
    ctx.db.qrAttempt.findUnique({ where: { sessionId_number: { sessionId, number: s.attempt } }, select: { startedAt: true } }),
    s.qrCount > 0
      ? ctx.db.qrCode.findUnique({ where: { sessionId_sequence: { sessionId, sequence: s.qrCount } }, select: { attempt: true } })
      : null,
  ]);
  return {
    ...s,
    expiresAt: attempt ? new Date(attempt.startedAt.getTime() + ctx.config.QRFLEET_SCAN_WINDOW_MS) : null,
    sequence: code?.attempt === s.attempt ? s.qrCount : null,
  };
}

export const isOpen = (status: SessionStatus) => OPEN_STATUSES.includes(status);
