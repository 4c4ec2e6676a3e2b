import type { Block } from "./email-block.js";
import type { EventView } from "./types.js";

/**
 * What an operator reads about an instance's provider state (instance.alert, instance.recovered):
 * what happened, since when, and the one thing to do. The data is what fleet/instances/alerts.ts stored.
 */

export interface Naming {
  /** The label, or the idInstance. */
  short: string;
  /** The label with the idInstance. */
  long: string;
  at(d: Date): string;
}

type Message = { subject: string; blocks: Block[] };

const DAY_MS = 86_400_000;

export function alertMessage(event: EventView, name: Naming): Message {
  const settings = settingsMessage(event.data, name);
  if (settings) return settings;
  const state = text(event.data.state) ?? "unknown";
  const since = date(event.data.since) ?? event.createdAt;
  const rebootedAt = date(event.data.rebootedAt);
  const deadline = date(event.data.deadline);
  if (deadline) return unlinkWarning(name, since, deadline);
  if (state === "blocked") {
    return {
      subject: `Blocked: ${name.short}`,
      blocks: [
        { p: `WhatsApp has blocked the number of instance ${name.long}: GREEN-API reports it blocked since ${name.at(since)}.` },
        { p: "Nothing can be automated: no message goes out and no QR code helps. Check the number in the GREEN-API console and appeal to WhatsApp, or replace the number." },
      ],
    };
  }
  if (state === "yellowCard") {
    return {
      subject: `Sending suspended: ${name.short}`,
      blocks: [
        { p: `WhatsApp has suspended sending from instance ${name.long} for suspected spam (yellowCard) since ${name.at(since)}. Messages wait in the queue for 24 hours.` },
        { p: "Reboot the instance from the GREEN-API console and slow down what it sends; if the state stays, contact GREEN-API support." },
      ],
    };
  }
  if (rebootedAt) {
    return {
      subject: `Stuck ${state}: ${name.short}`,
      blocks: [
        { p: `WhatsApp instance ${name.long} has been ${state} since ${name.at(since)}. qrfleet rebooted it at ${name.at(rebootedAt)}, and it still is.` },
        { p: "Check it in the GREEN-API console. The provider's workaround for a stuck start is to log the instance out and link it again with a fresh QR code." },
      ],
    };
  }
  return {
    subject: `Needs attention: ${name.short} is ${state}`,
    blocks: [{ p: `GREEN-API reports WhatsApp instance ${name.long} as ${state} since ${name.at(since)}. Check it in the GREEN-API console.` }],
  };
}

function unlinkWarning(name: Naming, since: Date, deadline: Date): Message {
  const days = Math.max(1, Math.round((deadline.getTime() - since.getTime()) / DAY_MS));
  return {
    subject: `Phone offline: ${name.short} — bring it online before ${name.at(deadline)}`,
    blocks: [
      { p: `The phone of WhatsApp instance ${name.long} has been offline (sleepMode) since ${name.at(since)}.` },
      {
        p:
          `WhatsApp unlinks a linked device whose phone stays offline for about ${days} days: switch the phone on, connect it ` +
          `to the internet and open WhatsApp before ${name.at(deadline)}, or the instance will need a new QR scan.`,
      },
    ],
  };
}

export function recoveredMessage(event: EventView, name: Naming): Message {
  const state = text(event.data.state) ?? "unknown";
  const now = text(event.data.endState) ?? "another state";
  const since = date(event.data.since);
  const endedAt = date(event.data.endedAt) ?? event.createdAt;
  const stretch = since ? ` (since ${name.at(since)})` : "";
  return {
    subject: `Recovered: ${name.short} is no longer ${state}`,
    blocks: [{ p: `WhatsApp instance ${name.long} is no longer ${state}${stretch}: GREEN-API reported it ${now} at ${name.at(endedAt)}.` }],
  };
}

/**
 * The webhook settings seen changed after a re-link, or not set back (fleet/instances/settings-watch.ts).
 * `summary` was written with the event, so the webhook carries the same words as the email.
 */
function settingsMessage(data: Record<string, unknown>, name: Naming): Message | null {
  const summary = text(data.summary) ?? "Its webhook settings changed.";
  if (data.reason === "settings_changed") {
    return { subject: `Webhook settings changed: ${name.short}`, blocks: [{ p: `WhatsApp instance ${name.long}. ${summary}` }] };
  }
  if (data.reason === "settings_not_restored") {
    return { subject: `Webhook settings not restored: ${name.short}`, blocks: [{ p: `WhatsApp instance ${name.long}. ${summary}` }] };
  }
  return null;
}

/** A reading of the settings as fleet/instances/webhook-settings.ts stores it (SettingsSeen); nothing in it is secret. */
export interface SeenWords {
  setup: string;
  host: string | null;
  token: string;
  stateWebhook: boolean;
}

const urlWords = (s: SeenWords) => (s.setup === "unset" ? "empty" : s.setup === "foreign" ? `a receiver at ${s.host ?? "another address"}` : "qrfleet's");
const tokenWords = (t: string) => (t === "ours" ? "qrfleet's" : t === "none" ? "none" : "another one");

/** What changed, what it means and what happens next, in an operator's words. */
export function settingsChangeSummary(before: SeenWords, after: SeenWords, restoring: "restoring" | "off" | "not_ours"): string {
  const said: string[] = [];
  if (urlWords(before) !== urlWords(after)) said.push(`the webhook URL is now ${urlWords(after)} (it was ${urlWords(before)})`);
  else if (after.setup === "foreign") said.push(`the webhook URL at ${after.host ?? "another address"} changed`);
  if (before.token !== after.token) said.push(`the webhook token is now ${tokenWords(after.token)} (it was ${tokenWords(before.token)})`);
  if (before.stateWebhook !== after.stateWebhook) said.push(`state-change webhooks were turned ${after.stateWebhook ? "on" : "off"}`);
  const what = `Its webhook settings changed since qrfleet last read them${said.length > 0 ? `: ${said.join("; ")}` : ""}.`;
  return [what, effect(before, after), nextStep(after, restoring)].filter((t) => t !== "").join(" ");
}

function effect(before: SeenWords, after: SeenWords): string {
  if (before.setup === "ours" && after.setup !== "ours") {
    return "qrfleet no longer hears from GREEN-API when the instance is logged out; the sweep's polling still notices it, later.";
  }
  return after.setup === "ours" && before.setup !== "ours" ? "qrfleet now hears from GREEN-API when the instance is logged out." : "";
}

function nextStep(after: SeenWords, restoring: "restoring" | "off" | "not_ours"): string {
  if (restoring === "restoring") return "restoreSettings is on: qrfleet is setting them back (this reboots the instance); you will hear if that fails.";
  if (after.setup === "ours") return "";
  if (restoring === "not_ours") return "They were not qrfleet's before, so qrfleet leaves them as they are.";
  if (after.setup === "foreign") {
    return "qrfleet never changes another receiver's webhook: if that receiver belongs there, have it forward stateInstanceChanged to qrfleet; if not, clear the URL in the GREEN-API console and run qrfleet instance webhooks --apply.";
  }
  return "qrfleet instance webhooks --apply sets them back; with restoreSettings on, qrfleet does it by itself next time.";
}

/** Why setting them back failed. */
export function notRestoredSummary(why: string): string {
  return `qrfleet tried to set its webhook settings back after they changed, but ${why}. Check the instance in the GREEN-API console, then run qrfleet instance webhooks --plan.`;
}

const text = (v: unknown): string | null => (typeof v === "string" && v !== "" ? v : null);

function date(v: unknown): Date | null {
  if (typeof v !== "string") return null;
  const d = new Date(v);
  return Number.isNaN(d.getTime()) ? null : d;
}
