import { maskSecrets } from "../log.js";
import { alertMessage, recoveredMessage } from "./alert-content.js";
import { enlargeQr } from "./qr-image.js";
import type { Block } from "./email-block.js";
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

function longName(event: EventView): string {
  const label = event.instance.label?.trim();
  return label ? `"${label}" (${event.instance.idInstance})` : event.instance.idInstance;
}

const str = (v: unknown): string | null => (typeof v === "string" && v !== "" ? v : null);
const num = (v: unknown): number | null => (typeof v === "number" && Number.isFinite(v) ? v : null);
const phone = (v: string | null): string => (v === null ? "an unknown number" : /^\d+$/.test(v) ? `+${v}` : v);
const clock = (d: Date): string => `${d.toISOString().slice(11, 19)} UTC`;
const dateTime = (d: Date): string => `${d.toISOString().slice(0, 16).replace("T", " ")} UTC`;
const oneLine = (s: string): string => s.replace(/[\p{Cc}\s]+/gu, " ").trim();

const qrCaption = (validUntil: Date, where: string) =>
  `${where} is valid until ${clock(validUntil)} — open the live page for the current code.`;

function renderText(blocks: Block[]): string {
  const main = blocks.filter((b) => !("small" in b));
  const notes = blocks.flatMap((b) => ("small" in b ? [b.small] : []));
  const parts = main.map((b) => {
    if ("p" in b) return b.p;
    if ("cta" in b) return `${b.cta.label}:\n${b.cta.url}`;
    if ("qr" in b) return qrCaption(b.qr.validUntil, "The attached QR code");
    return "";
  });
  return [...parts, ["-- ", ...notes].join("\n")].join("\n\n") + "\n";
}

function esc(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;").replace(/'/g, "&#39;");
}

function renderHtml(subject: string, blocks: Block[]): string {
  const body = blocks
    .map((b) => {
      if ("p" in b) return `<p style="margin:0 0 16px">${esc(b.p)}</p>`;
      if ("cta" in b) {
        return (
          `<p style="margin:24px 0"><a href="${esc(b.cta.url)}" style="display:inline-block;padding:16px 32px;` +
          `background:#128c7e;color:#ffffff;font-size:20px;font-weight:bold;text-decoration:none;border-radius:8px">` +
          `${esc(b.cta.label)}</a></p>` +
          `<p style="margin:0 0 16px;font-size:12px;color:#555">or copy this link: ${esc(b.cta.url)}</p>`
        );
      }
      if ("qr" in b) {
        return (
          `<p style="margin:0 0 4px"><img src="cid:${esc(b.qr.cid)}" width="${b.qr.width}" height="${b.qr.height}" ` +
          `alt="WhatsApp QR code" style="image-rendering:pixelated;border:1px solid #ddd"></p>` +
          `<p style="margin:0 0 16px;font-size:14px;color:#333">${esc(qrCaption(b.qr.validUntil, "This QR code"))}</p>`
        );
      }
      return `<p style="margin:24px 0 0;font-size:12px;color:#777">${esc(b.small)}</p>`;
    })
    .join("\n");
  return (
    `<!doctype html><html><head><meta charset="utf-8"><title>${esc(oneLine(subject))}</title></head>` +
    `<body style="font-family:Arial,Helvetica,sans-serif;font-size:16px;line-height:1.4;color:#111;max-width:600px">\n${body}\n</body></html>\n`
  );
}
