/** The contract between the QR attempt engine and everything that drives or consumes it. */

/** Instance states of getStateInstance; anything else the provider sends becomes "unknown". */
export const INSTANCE_STATES = ["notAuthorized", "authorized", "blocked", "sleepMode", "starting", "yellowCard"] as const;
export type InstanceState = (typeof INSTANCE_STATES)[number] | "unknown";

const KNOWN_STATES: ReadonlySet<string> = new Set(INSTANCE_STATES);

/** The provider's word for a state, or "unknown" for one this version does not know. */
export function toInstanceState(raw: string): InstanceState {
  return KNOWN_STATES.has(raw) ? (raw as InstanceState) : "unknown";
}

export interface InstanceAddress {
  apiUrl: string;
  idInstance: string;
  /** apiTokenInstance: a secret. Never logged; URLs carrying it are masked with maskSecrets(). */
  token: string;
}

export type FailureReason =
  | "invalid_token" // upgrade or REST answered 401/403: retrying will not help
  | "unknown_instance" // 404: retrying will not help
  | "provider_error" // an `error` frame, or a 5xx on upgrade
  | "protocol_error" // a frame that is not JSON, a qrCode that is not a PNG, a huge frame
  | "connection_lost" // the socket closed (or never opened) without a terminal message
  | "silent" // no frame for longer than the silence bound
  | "too_long" // the attempt outlived its hard bound
  | "qr_flood"; // QR frames far faster than any rotation: a broken or hostile provider

/** Exactly one of these ends every QR attempt, websocket or REST polling. */
export type AttemptOutcome =
  | { kind: "authorized"; accountData: unknown; phone: string | null }
  | { kind: "already_logged" }
  | { kind: "timed_out" }
  | { kind: "failed"; reason: FailureReason; message: string }
  | { kind: "cancelled"; reason: string };

export interface QrImage {
  png: Buffer;
  /** hex sha256 of the PNG bytes */
  sha256: string;
  /** 1-based number among the distinct images of this attempt (one socket, or one run of REST polling); QrCode.sequence counts the session's */
  number: number;
  receivedAt: Date;
}

/** Things worth a log line or a metric that do not end the attempt. */
export type AttemptNotice =
  | { kind: "opened" }
  | { kind: "duplicate_qr"; sha256: string }
  | { kind: "unknown_type"; type: string }
  | { kind: "ignored_frame"; reason: string }
  /** Once, at the attempt's end: QR frames overtaken by a newer one before they were due, never handed over. */
  | { kind: "qr_dropped"; count: number }
  /** REST polling: one `qr` call failed in a way the next poll may not (5xx, timeout, bad body). */
  | { kind: "poll_failed"; reason: string };
