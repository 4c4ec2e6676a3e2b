import type { FleetContext } from "../../src/fleet/context.js";
import type { FleetEventMap } from "../../src/fleet/events.js";
import type { CaughtMail } from "./mail-catcher.js";
import type { ReceivedWebhook } from "./webhook-sink.js";

/**
 * Turns what happens during the demo into one readable line each: session transitions and QR
 * codes (the daemon's fleet events), mail as the catcher receives it, webhooks as the sink
 * verifies them. Deliveries are told from the receiving side; the outbox's own line is printed
 * only when a delivery did not go through (retry, expired, failed).
 */

type Print = (line: string) => void;

const clock = () => new Date().toTimeString().slice(0, 8);
const WHO_WIDTH = 14;

/** One line: time, who it is about, what happened. */
export function stamp(who: string, text: string): string {
  return `${clock()}  ${who.padEnd(WHO_WIDTH)} ${text}`;
}

export function mailLine(m: CaughtMail): string {
  return stamp("✉ mail", `"${m.subject}" to ${m.to} → ${m.file}`);
}

export function webhookLine(w: ReceivedWebhook): string {
  const sig = w.verified ? "✓ signature" : `✗ signature (${w.problem})`;
  const who = w.label ? ` — ${w.label}${w.attempt ? `, attempt ${w.attempt}` : ""}` : "";
  return stamp("⇢ webhook", `${w.type} ${sig}${w.repeat ? " (retry of a message already received)" : ""}${who}`);
}

const ENDINGS: Record<string, string> = {
  authorized: "✔ authorized: the phone scanned the QR",
  already_logged: "✔ already_logged: it was linked, nothing to scan",
  wrong_number: "✘ wrong_number: another phone scanned it — needs attention",
  timed_out: "✘ timed_out: no scan in any attempt — final email sent",
  failed: "✘ failed",
  cancelled: "cancelled",
};

/**
 * Prints the fleet events of `ctx` as they are emitted, for the instances in `names` (the storm's
 * branches are told by the mail they cause); returns the function that stops it.
 */
export function narrate(ctx: FleetContext, names: Map<string, string>, print: Print): () => void {
  const line = (who: string | undefined, text: string) => void (who !== undefined && print(stamp(who, text)));
  const name = (instanceId: string) => names.get(instanceId);
  const maxAttempts = ctx.config.QRFLEET_SESSION_ATTEMPTS;

  const onTransition = (t: FleetEventMap["session:transition"][0]) => {
    const of = `${t.attempt}/${maxAttempts}`;
    let text: string;
    if (t.to === "queued" && t.from === null) text = `session queued (trigger ${t.reason ?? "?"})`;
    else if (t.to === "running") text = `attempt ${of} running${t.reason === "resumed" ? " (resumed)" : ""}`;
    else if (t.to === "queued" && t.nextAttemptInMs !== undefined) {
      text = `attempt ${of} ended (${t.reason}) — attempt ${t.attempt + 1} in ${(t.nextAttemptInMs / 1000).toFixed(1)} s`;
    } else if (t.to === "queued") text = `attempt ${of} handed back (${t.reason ?? "?"})`;
    else text = `${ENDINGS[t.to] ?? t.to}${t.to === "failed" && t.reason ? ` (${t.reason})` : ""}`;
    line(name(t.instanceId), text);
  };
  const onQr = (q: FleetEventMap["session:qr"][0]) => line(name(q.instanceId), `QR #${q.sequence} stored (attempt ${q.attempt})`);
  const onNotice = (n: FleetEventMap["session:notice"][0]) => {
    if (n.kind !== "opened") line("session", `notice ${n.kind}${n.detail ? ` (${n.detail})` : ""}`);
  };
  const onState = (s: FleetEventMap["instance:state"][0]) => line(name(s.instanceId), `provider state: ${s.state}`);
  const onDelivery = (d: FleetEventMap["delivery:result"][0]) => {
    if (d.status === "sent") return;
    ctx.db.delivery
      .findUnique({ where: { id: d.deliveryId }, include: { channel: true, event: true } })
      .then((row) => {
        const what = row ? `${row.event.type} to ${row.channel.kind} ${row.channel.address}` : d.deliveryId;
        line("delivery", `${what}: ${d.status}${row?.lastError ? ` (${row.lastError})` : ""}`);
      })
      .catch(() => line("delivery", `${d.deliveryId}: ${d.status}`));
  };

  ctx.events.on("session:transition", onTransition);
  ctx.events.on("session:qr", onQr);
  ctx.events.on("session:notice", onNotice);
  ctx.events.on("instance:state", onState);
  ctx.events.on("delivery:result", onDelivery);
  return () => {
    ctx.events.off("session:transition", onTransition);
    ctx.events.off("session:qr", onQr);
    ctx.events.off("session:notice", onNotice);
    ctx.events.off("instance:state", onState);
    ctx.events.off("delivery:result", onDelivery);
  };
}
