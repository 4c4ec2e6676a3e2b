import { maskSecrets } from "../log.js";
import { alertMessage, recoveredMessage } from "./alert-content.js";
import { enlargeQr } from "./qr-image.js";
import { dateTime, oneLine, renderHtml, renderText, type Block } from "./email-block.js";
import type { EventView, QrView } from "./types.js";

/**
 * What an operator reads. An emailed QR is usually stale by the time it is read (it rotates
 * every ~20 s), so the signed live link is the call to action and the image is the fallback.
 * Each message is a list of blocks rendered twice, as text and as HTML, so the parts agree.
 */

export interface EmailContext {
  /** The signed live-page link; null when the message has no use for it. */
  liveUrl: string | null;
  liveExpiresAt: Date | null;
  qr: QrView | null;
}

export interface EmailAttachment {
  filename: string;
  content: Buffer;
  contentType: "image/png";
  cid: string;
}

export interface ComposedEmail {
  /** X-Qrfleet-Instance and X-Qrfleet-Event, for mail rules that sort by instance or kind. */
  headers: Record<string, string>;
  subject: string;
  text: string;
  html: string;
  attachments: EmailAttachment[];
}

export type { Block } from "./email-block.js";

const QR_CID = "qr@qrfleet";
/** Wide enough for a phone camera to read off a laptop screen. */
const QR_MIN_PX = 320;

export function composeEmail(event: EventView, ctx: EmailContext): ComposedEmail {
  const attachments: EmailAttachment[] = [];
  const { subject, blocks } = messageFor(event, ctx, attachments);
  blocks.push({ small: `You get this because you look after WhatsApp instance ${event.instance.idInstance} in qrfleet.` });
  const headers = { "X-Qrfleet-Instance": event.instance.idInstance, "X-Qrfleet-Event": event.type };
  return { headers, subject: oneLine(subject), text: renderText(blocks), html: renderHtml(subject, blocks), attachments };
}

/** A message about qrfleet itself (a channel it stopped using), not about an instance's event. */
export interface Notice {
  subject: string;
  paragraphs: string[];
}

export function composeNotice(notice: Notice): ComposedEmail {
  const blocks: Block[] = [...notice.paragraphs.map((p) => ({ p })), { small: "You get this because you are an operator in qrfleet." }];
  const headers = { "X-Qrfleet-Event": "channel.disabled" };
  return { headers, subject: oneLine(notice.subject), text: renderText(blocks), html: renderHtml(notice.subject, blocks), attachments: [] };
}

/** What the event's own email would say in its subject line: a digest's line for it. */
export function eventSummary(event: EventView): string {
  return oneLine(messageFor(event, { liveUrl: null, liveExpiresAt: null, qr: null }, []).subject);
}

function messageFor(event: EventView, ctx: EmailContext, attachments: EmailAttachment[]): { subject: string; blocks: Block[] } {
  switch (event.type) {
    case "qr.updated":
      return scanNeeded(event, ctx, attachments);
    case "session.timed_out":
      return timedOut(event, ctx);
    case "session.wrong_number":
      return wrongNumber(event);
    case "session.failed":
      return failed(event);
    case "session.authorized":
    case "session.already_logged":
      return { subject: `Linked: ${shortName(event)}`, blocks: [{ p: `WhatsApp instance ${longName(event)} is linked.` }] };
    case "instance.alert":
      return alertMessage(event, naming(event));
    case "instance.recovered":
      return recoveredMessage(event, naming(event));
    case "pairing.requested":
      return { subject: `Pairing code requested: ${shortName(event)}`, blocks: [{ p: `A pairing code was requested for ${longName(event)} from its live page.` }] };
  }
}

function scanNeeded(event: EventView, ctx: EmailContext, attachments: EmailAttachment[]) {
  const { attempt, max } = attempts(event);
  const blocks: Block[] = [{ p: `${why(event)} Scan a QR code with the phone that owns it to link it again.` }];
  if (ctx.liveUrl) blocks.push({ cta: { url: ctx.liveUrl, label: "Open the live QR page" } });
  blocks.push({
    p:
      `Attempt ${attempt} of ${max}` +
      (attempt > 1 ? ` (attempt ${attempt - 1} ended without a scan).` : ".") +
      " While a session runs, the live page shows its current code, counts down the scan window and says when the phone is linked.",
  });
  if (ctx.qr) {
    const picture = enlargeQr(ctx.qr.png, QR_MIN_PX);
    attachments.push({ filename: `qr-${ctx.qr.sequence}.png`, content: picture.png, contentType: "image/png", cid: QR_CID });
    const width = Math.min(Math.max(picture.width, QR_MIN_PX), 400);
    const height = picture.width > 0 ? Math.round((width * picture.height) / picture.width) : width;
    blocks.push({ qr: { cid: QR_CID, width, height, validUntil: ctx.qr.validUntil } });
  }
  blocks.push({ p: "To scan: on the phone open WhatsApp → Settings → Linked devices → Link a device, and point the camera at the code." });
  if (ctx.liveExpiresAt) {
    blocks.push({ small: `The link needs no login and works until ${dateTime(ctx.liveExpiresAt)}. Opening it starts nothing: if no session is running, the page offers a button that starts one.` });
  }
  return { subject: `Scan needed: ${shortName(event)} (attempt ${attempt} of ${max})`, blocks };
}

function timedOut(event: EventView, ctx: EmailContext) {
  const { attempt, max } = attempts(event);
  const blocks: Block[] = [
    {
      p:
        `Nobody scanned the QR code of WhatsApp instance ${longName(event)}: all ${Math.max(attempt, max)} attempts timed out ` +
        "and qrfleet has stopped trying. The instance stays logged out until someone scans.",
    },
  ];
  if (ctx.liveUrl) {
    blocks.push({ p: "When you have the phone at hand, open the live page and press its button: that starts a new session." });
    blocks.push({ cta: { url: ctx.liveUrl, label: "Open the live page" } });
  }
  if (ctx.liveExpiresAt) blocks.push({ small: `The link works until ${dateTime(ctx.liveExpiresAt)}.` });
  return { subject: `Not linked: ${shortName(event)} — no scan in ${max} attempts`, blocks };
}

function wrongNumber(event: EventView) {
  const actual = str(event.data.phone) ?? event.session?.phone ?? null;
  const expected = str(event.data.expectedPhone) ?? event.instance.expectedPhone;
  const loggedOut = event.data.loggedOut;
  const aftermath =
    loggedOut === true ? " qrfleet has logged it out again." : loggedOut === false ? " It stays linked to that number until someone logs it out." : "";
  const blocks: Block[] = [
    { p: `WhatsApp instance ${longName(event)} was linked by ${phone(actual)}, but it should belong to ${phone(expected)}.${aftermath}` },
    { p: "Check who scanned the code (a forwarded email or a shared screen?), then link it again with the right phone." },
  ];
  return { subject: `Wrong phone linked to ${shortName(event)}`, blocks };
}

function failed(event: EventView) {
  const code = str(event.data.errorCode) ?? event.session?.errorCode ?? null;
  const id = event.instance.idInstance;
  let action: string;
  if (code === "invalid_token") {
    action =
      "GREEN-API refused the instance's API token (apiTokenInstance), so no QR code can be requested. " +
      `Fix the token: copy it from the GREEN-API console for instance ${id} and run ` +
      `"qrfleet instance update ${id} --token <the new token>". Nothing is retried until then.`;
  } else if (code === "unknown_instance") {
    action = `GREEN-API does not know instance ${id} at its API URL. Check the instance id and API URL in qrfleet, or remove the instance if it was deleted.`;
  } else {
    const detail = str(event.data.error) ?? event.session?.error ?? "no detail was recorded";
    action = `The session failed for good (${code ?? "error"}): ${maskSecrets(detail).slice(0, 300)}. Check the instance in the GREEN-API console, then start a new session.`;
  }
  return {
    subject: `Action needed: ${shortName(event)} cannot be linked`,
    blocks: [{ p: `WhatsApp instance ${longName(event)} could not be linked.` }, { p: action }] satisfies Block[],
  };
}

function why(event: EventView): string {
  const name = longName(event);
  switch (event.session?.trigger) {
    case "schedule":
      return `WhatsApp instance ${name} was logged out: a scheduled check found it not authorized.`;
    case "provider":
      return `WhatsApp instance ${name} was logged out: GREEN-API reported it not authorized.`;
    case "admin":
      return `An administrator asked to link WhatsApp instance ${name} again.`;
    case "live":
      return `Someone pressed Start on the live page of WhatsApp instance ${name} to link it again.`;
    default:
      return `WhatsApp instance ${name} was logged out: the fleet check found it not authorized.`;
  }
}

function attempts(event: EventView): { attempt: number; max: number } {
  const attempt = event.attempt ?? event.session?.attempt ?? 1;
  const max = event.session?.maxAttempts ?? num(event.data.maxAttempts) ?? attempt;
  return { attempt, max };
}

const naming = (event: EventView) => ({ short: shortName(event), long: longName(event), at: dateTime });

function shortName(event: EventView): string {
  return event.instance.label?.trim() || event.instance.idInstance;
}

/** The instance as a message names it: the label with the idInstance. */
export function longName(event: EventView): string {
  const label = event.instance.label?.trim();
  return label ? `"${label}" (${event.instance.idInstance})` : event.instance.idInstance;
}

const str = (v: unknown): string | null => (typeof v === "string" && v !== "" ? v : null);
const num = (v: unknown): number | null => (typeof v === "number" && Number.isFinite(v) ? v : null);
const phone = (v: string | null): string => (v === null ? "an unknown number" : /^\d+$/.test(v) ? `+${v}` : v);
