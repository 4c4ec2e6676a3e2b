import { clock, dateTime, oneLine, renderHtml, renderText, type Block } from "./email-block.js";
import { eventSummary, longName, type ComposedEmail } from "./email-content.js";
import type { DigestItem, FleetView } from "./types.js";

/**
 * A digest as an operator reads it, on a phone as much as at a desk: first the instances that
 * need a scan now, longest waiting first, each with its live link; then what ended since the last
 * digest. Long lists are cut, and say how much more there is.
 */

/** Lines of each list before "and N more": a digest must stay readable, not be an export. */
export const DIGEST_LIST_MAX = 500;

/** Types whose line says how something ended or what happened to the instance. */
const ENDED = new Set(["session.authorized", "session.already_logged", "session.timed_out", "session.failed", "session.wrong_number", "instance.alert", "instance.recovered"]);

export function composeDigest(digest: FleetView, liveExpiresAt: Date): ComposedEmail {
  const waiting = waitingInstances(digest.items);
  const ended = digest.items.filter((i) => ENDED.has(i.view.type) && !(i.view.type === "session.timed_out" && i.view.data.final === false));
  const since = typeof digest.data.since === "string" ? new Date(digest.data.since) : null;
  const subject = oneLine(`qrfleet digest: ${count(waiting.length, "instance needs", "instances need")} a scan, ${count(ended.length, "update", "updates")}`);
  const blocks: Block[] = [
    ...(digest.data.storm === true ? [{ p: STORM_NOTE }] : []),
    { p: `${since ? `Since ${clock(since)}: ` : ""}${count(waiting.length, "WhatsApp instance is", "WhatsApp instances are")} waiting for a scan, and ${count(ended.length, "thing has", "things have")} happened that you should know of.` },
  ];
  if (waiting.length > 0) {
    blocks.push({ h: `Needs a scan now (${waiting.length})` });
    blocks.push(...capped(waiting, (i) => ({ item: { title: longName(i.view), detail: waitingDetail(i, digest.createdAt), link: { url: i.liveUrl!, label: "Open live QR" } } })));
  }
  if (ended.length > 0) {
    blocks.push({ h: `Since the last digest (${ended.length})` });
    blocks.push(...capped(ended, (i) => ({ item: { title: longName(i.view), detail: `${eventSummary(i.view)} · ${clock(i.view.createdAt)}`, link: null } })));
  }
  blocks.push({
    small:
      "You get this digest because you look after WhatsApp instances in qrfleet: their news is grouped into one message instead of one per instance. " +
      `Each live link needs no login and works until ${dateTime(liveExpiresAt)}; opening it starts nothing.`,
  });
  return { headers: { "X-Qrfleet-Event": "digest" }, subject, text: renderText(blocks), html: renderHtml(subject, blocks), attachments: [] };
}

const STORM_NOTE =
  "Many instances logged out at once (a fleet incident), so this channel gets digests instead of a message per instance until it is over.";

/** A fleet incident or its end: how many logged out, when, and where to look. */
export function composeIncident(view: FleetView): ComposedEmail {
  const d = view.data;
  const n = numberOf(d.count);
  const threshold = numberOf(d.threshold);
  const minutes = Math.max(1, Math.round(numberOf(d.windowMs) / 60_000));
  const blocks: Block[] = [];
  let subject: string;
  if (view.type === "fleet.incident") {
    subject = `Fleet incident: ${n} instances logged out within ${minutes} min`;
    blocks.push(
      { p: `${n} of ${numberOf(d.enabledInstances)} WhatsApp instances were logged out between ${clockOf(d.firstAt)} and ${clockOf(d.latestAt)}, more than the ${threshold} qrfleet takes for normal within ${minutes} min. Their QR sessions start at the usual pace.` },
      { p: "Until it is over, a channel that would get more than a few messages a minute gets digests instead; an operator of a few instances still hears of them at once." },
    );
    if (typeof d.dashboardUrl === "string") blocks.push({ cta: { url: d.dashboardUrl, label: "Open the dashboard, filtered to them" } });
    blocks.push({ p: "Many logouts at once can come before a ban, or follow an outage of WhatsApp or the provider: check the provider's status, and whether these numbers sent in bulk." });
  } else {
    subject = `Fleet recovered: logouts back under ${threshold} in ${minutes} min`;
    blocks.push({ p: `The fleet incident that started at ${clockOf(d.startedAt)} is over: ${n} instances logged out within the last ${minutes} min. At its worst, ${numberOf(d.peak)} did.` });
  }
  blocks.push({ small: "You get this because you look after the whole fleet in qrfleet." });
  return { headers: { "X-Qrfleet-Event": view.type }, subject: oneLine(subject), text: renderText(blocks), html: renderHtml(subject, blocks), attachments: [] };
}

const numberOf = (v: unknown): number => (typeof v === "number" && Number.isFinite(v) ? v : 0);
const clockOf = (v: unknown): string => (typeof v === "string" && !Number.isNaN(Date.parse(v)) ? dateTime(new Date(v)) : "an unknown time");

/** Each instance whose session still waits for a scan, once, by its newest item; longest unlinked first. */
function waitingInstances(items: readonly DigestItem[]): DigestItem[] {
  const newest = new Map<string, DigestItem>();
  for (const item of items) newest.set(item.view.instance.id, item);
  const waiting = [...newest.values()].filter((i) => i.liveUrl !== null);
  return waiting.sort((a, b) => (a.unlinkedSince?.getTime() ?? Infinity) - (b.unlinkedSince?.getTime() ?? Infinity));
}

function waitingDetail(item: DigestItem, at: Date): string {
  const s = item.view.session;
  const attempt = s ? ` · attempt ${Math.max(s.attempt, 1)} of ${s.maxAttempts}` : "";
  const since = item.unlinkedSince ? `unlinked for ${duration(at.getTime() - item.unlinkedSince.getTime())}` : "waiting for a scan";
  return `${since}${attempt}`;
}

function capped(items: readonly DigestItem[], line: (i: DigestItem) => Block): Block[] {
  const shown = items.slice(0, DIGEST_LIST_MAX).map(line);
  const more = items.length - DIGEST_LIST_MAX;
  return more > 0 ? [...shown, { p: `…and ${more} more.` }] : shown;
}

function duration(ms: number): string {
  const min = Math.max(0, Math.round(ms / 60_000));
  if (min < 1) return "under a minute";
  if (min < 120) return `${min} min`;
  const h = Math.round(min / 60);
  return h < 48 ? `${h} h` : `${Math.round(h / 24)} days`;
}

const count = (n: number, one: string, many: string) => `${n} ${n === 1 ? one : many}`;
