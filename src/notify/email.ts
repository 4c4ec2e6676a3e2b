import nodemailer from "nodemailer";
import addressparser from "nodemailer/lib/addressparser/index.js";
import { maskSecrets } from "../log.js";
import { composeDigest, composeIncident } from "./fleet-content.js";
import { composeEmail, composeNotice, type EmailContext, type Notice } from "./email-content.js";
import { buildMime } from "./mime.js";
import { truncateBody, type FleetView, type TryResult, type EventView } from "./types.js";

export { composeEmail, type ComposedEmail, type EmailAttachment, type EmailContext, type Notice } from "./email-content.js";

/** One email to write and send: the event it tells of, to one address. */
export interface EventEmailRequest extends EmailContext {
  view: EventView;
  to: string;
}

/** A notice about qrfleet itself to one address (see channel-health.ts). */
export interface NoticeRequest {
  notice: Notice;
  to: string;
}

/** An event about the fleet to one address: a digest's items carry their live links already. */
export interface FleetEmailRequest {
  fleet: FleetView;
  liveExpiresAt: Date;
  to: string;
}

export type EmailRequest = EventEmailRequest | NoticeRequest | FleetEmailRequest;

function compose(request: EmailRequest) {
  if ("notice" in request) return composeNotice(request.notice);
  if ("fleet" in request) return request.fleet.type === "digest" ? composeDigest(request.fleet, request.liveExpiresAt) : composeIncident(request.fleet);
  return composeEmail(request.view, { liveUrl: request.liveUrl, liveExpiresAt: request.liveExpiresAt, qr: request.qr });
}

/**
 * Composes and sends one email; never throws for a delivery problem, it says what it came to.
 * Composing is part of sending (the QR is enlarged, about a millisecond), so a mailer that runs
 * on another thread takes both off the thread that reads the QR sockets.
 */
export interface Mailer {
  send(request: EmailRequest): Promise<TryResult>;
  close(): Promise<void>;
}

export interface MailerOptions {
  /** SMTP connections kept open at once. Default: 5 */
  maxConnections?: number;
  /** TCP connect bound, in ms. Default: 10000 */
  connectionTimeoutMs?: number;
  /** Wait for the server's greeting after connecting, in ms. Default: 10000 */
  greetingTimeoutMs?: number;
  /** Bound on any silence of the socket while sending, in ms. Default: 30000 */
  socketTimeoutMs?: number;
}

export function createMailer(smtpUrl: string, from: string, opts: MailerOptions = {}): Mailer {
  const fromAddress = addressOf(from);
  const transport = nodemailer.createTransport(
    {
      url: smtpUrl,
      pool: true,
      maxConnections: opts.maxConnections ?? 5,
      connectionTimeout: opts.connectionTimeoutMs ?? 10_000,
      greetingTimeout: opts.greetingTimeoutMs ?? 10_000,
      socketTimeout: opts.socketTimeoutMs ?? 30_000,
      // Attachments are buffers we made; never let message content make the daemon read files or URLs.
      disableFileAccess: true,
      disableUrlAccess: true,
    },
  );
  return {
    async send(request) {
      try {
        const raw = buildMime({ from, to: request.to }, compose(request));
        const info = await transport.sendMail({ envelope: { from: fromAddress, to: [request.to] }, raw });
        const response = String(info.response ?? "");
        return { kind: "sent", status: smtpCode(response), body: truncateBody(response) };
      } catch (err) {
        return classifySmtpError(err);
      }
    },
    async close() {
      transport.close();
    },
  };
}

/**
 * Connects, greets (EHLO) and logs in as SMTP_URL says, then hangs up: what `qrfleet doctor` asks
 * of the mail server. Throws nodemailer's error; its message never carries the password.
 */
export async function verifySmtp(smtpUrl: string, timeoutMs: number): Promise<void> {
  const transport = nodemailer.createTransport({ url: smtpUrl, connectionTimeout: timeoutMs, greetingTimeout: timeoutMs, socketTimeout: timeoutMs });
  try {
    await transport.verify();
  } finally {
    transport.close();
  }
}

/** The bare address of `Name <address>`, for the SMTP envelope. */
function addressOf(from: string): string {
  const [first] = addressparser(from);
  return first && "address" in first && first.address ? first.address : from;
}

function smtpCode(response: string): number | null {
  const m = /^(\d{3})\b/.exec(response);
  return m ? Number(m[1]) : null;
}

/** A 5xx answer will not change on retry (no such mailbox); a 4xx or a broken connection may. */
export function classifySmtpError(err: unknown): TryResult {
  const e = err as { responseCode?: unknown; response?: unknown; code?: unknown; message?: unknown } | null;
  const status = typeof e?.responseCode === "number" ? e.responseCode : null;
  const response = typeof e?.response === "string" ? truncateBody(maskSecrets(e.response)) : null;
  const code = typeof e?.code === "string" ? e.code : "ERROR";
  const error = maskSecrets(`smtp ${code}: ${String(e?.message ?? err)}`).slice(0, 500);
  const permanent = status !== null && status >= 500 && status < 600;
  return { kind: permanent ? "permanent" : "retryable", status, body: response, error };
}
