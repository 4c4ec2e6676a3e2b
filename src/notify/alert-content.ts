import type { Block } from "./email-content.js";
import type { EventView } from "./types.js";

/**
 * What an operator reads about an instance's provider state (instance.alert, instance.recovered):
 * what happened, since when, and the one thing to do. The data is what fleet/alerts.ts stored.
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

const text = (v: unknown): string | null => (typeof v === "string" && v !== "" ? v : null);

function date(v: unknown): Date | null {
  if (typeof v !== "string") return null;
  const d = new Date(v);
  return Number.isNaN(d.getTime()) ? null : d;
}
