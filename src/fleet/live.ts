import type { Instance, SessionStatus } from "../db.js";
import { GreenApiError } from "../greenapi/errors.js";
import { verifyLiveToken } from "../notify/live-link.js";
import { isUuid } from "../uuid.js";
import type { FleetContext } from "./context.js";
import { isFleetError } from "./errors.js";
import { resolveInstance } from "./instances.js";
import { providerFor } from "./provider.js";
import { enqueueSession, OPEN_STATUSES } from "./sessions.js";

/**
 * What the live page (`/live/<signed token>`) may see and do for one instance: open its link,
 * follow one session, show the current QR code, ask the provider for a pairing code. The route
 * in http/ only turns these into pages, JSON and an event stream.
 */

/** The pairing form is public to whoever holds the link: one provider call per instance per interval, across every daemon. */
export const PAIR_INTERVAL_MS = 10_000;

export type LiveAccess = { instance: Instance; expiresAt: Date } | { refused: "malformed" | "tampered" | "expired" | "gone" };

export async function openLiveLink(ctx: FleetContext, token: string): Promise<LiveAccess> {
  const check = verifyLiveToken(ctx.box.hmacKeys(), token);
  if (!check.ok) return { refused: check.reason };
  try {
    return { instance: await resolveInstance(ctx.db, check.instanceId), expiresAt: check.expiresAt };
  } catch (err) {
    if (isFleetError(err)) return { refused: "gone" };
    throw err;
  }
}

/** The page names the session it started, so a reconnect follows it instead of starting another. */
export async function followSession(ctx: FleetContext, instance: Instance, hint: string | undefined): Promise<string> {
  if (hint && isUuid(hint)) {
    const found = await ctx.db.qrSession.findFirst({ where: { id: hint, instanceId: instance.id }, select: { id: true } });
    if (found) return found.id;
  }
  return (await enqueueSession(ctx, instance, "live")).session.id;
}

/** The PNG of a QR code of the instance's open session (the one the page follows, if named); null once it is not current. */
export async function currentQrPng(ctx: FleetContext, instanceId: string, sequence: number, hint: string | undefined): Promise<Buffer | null> {
  const open = await ctx.db.qrSession.findFirst({ where: { instanceId, status: { in: [...OPEN_STATUSES] } }, select: { id: true } });
  if (!open || (hint !== undefined && hint !== open.id)) return null;
  const code = await ctx.db.qrCode.findUnique({ where: { sessionId_sequence: { sessionId: open.id, sequence } }, select: { png: true } });
  return code ? Buffer.from(code.png) : null;
}

export type PairingResult =
  | { code: string }
  | { refused: "rate_limited" | "wrong_number" | "pairing_refused" | "invalid_token" | "provider_error"; message: string };

/** A pairing code for `phoneNumber` from the provider, at most once per instance per PAIR_INTERVAL_MS. */
export async function requestPairingCode(ctx: FleetContext, instance: Instance, phoneNumber: string): Promise<PairingResult> {
  if (instance.expectedPhone && instance.expectedPhone !== phoneNumber) {
    return { refused: "wrong_number", message: "this instance must be linked to another phone number; ask an admin if it has changed" };
  }
  const key = `${ctx.queues.prefix}:live-pair:${instance.id}`;
  const first = await ctx.queues.connection.set(key, "1", "PX", PAIR_INTERVAL_MS, "NX");
  if (first === null) return { refused: "rate_limited", message: "a code was just requested; wait a few seconds and try again" };
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

/** What one poll of the live page sees of the followed session; the QR fields only while an attempt is running. */
export interface LiveSnapshot {
  id: string;
  status: SessionStatus;
  attempt: number;
  maxAttempts: number;
  qrCount: number;
  dueAt: Date;
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
  const s = await ctx.db.qrSession.findUnique({ where: { id: sessionId }, select: SNAPSHOT_FIELDS });
  if (!s) return null;
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
