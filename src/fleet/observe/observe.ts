import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { Logger } from "../../log.js";
import type { FleetEvents } from "../events.js";
import { OPEN_STATUSES } from "../instances/open-session.js";

/** Logs and metrics listen to fleet events; business code never calls them directly. */
export interface FleetMetrics {
  registry: Registry;
}

/**
 * prom-client names three gauges as if they were counters (`…_total`), which `promtool check
 * metrics` rejects; `nodejs_active_handles`, `…_requests` and `…_resources` give the same counts by type.
 */
const GAUGES_NAMED_AS_COUNTERS = ["nodejs_active_handles_total", "nodejs_active_requests_total", "nodejs_active_resources_total"];

/**
 * Buckets from BENCH.md's figures. Webhooks: p99 70–110 ms at 10,000 sessions (the promise is
 * 100 ms, so 0.1 is a bound), 0.35–1 s at saturation, 2.5–7 s in overload.
 */
const WEBHOOK_BUCKETS = [0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1, 2.5, 5, 10, 30];
/** Emails: p99 0.2–0.4 s at 10,000 sessions, 1.4–3.4 s before the mail thread; the target is 2 s. */
const EMAIL_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60];
/**
 * Trigger to first QR: a fleet-wide logout of 10,000 opens its sockets over ~29 s at 400 a second
 * (target 30 s), and a first attempt that fails adds its backoff.
 */
const FIRST_QR_BUCKETS = [0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300, 900];

/** A delivery sent is routine (thousands a second at a mass logout); one given up on needs a look. */
const DELIVERY_LEVEL = { sent: "debug", retry: "info", expired: "info", failed: "warn" } as const;

const seconds = (sinceMs: number) => Math.max(0, Date.now() - sinceMs) / 1000;

/**
 * The event loop's lag is sampled every 100 ms, not prom-client's 10: a hundred wake-ups a second
 * were a third of an idle daemon's CPU, and a tenth of a second still sees every stall that matters.
 */
const LAG_SAMPLE_MS = 100;

/**
 * What this process did, counted from fleet events. Per QR it costs an increment and at most one
 * histogram observation per delivery, from what the event already carries: no lookup, no I/O.
 * Fleet-wide gauges (read from PostgreSQL and Redis at scrape time) are in fleet-gauges.ts.
 */
export function observeFleet(events: FleetEvents, log: Logger, registry = new Registry()): FleetMetrics {
  collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: LAG_SAMPLE_MS });
  for (const name of GAUGES_NAMED_AS_COUNTERS) registry.removeSingleMetric(name);
  const registers = [registry];
  const transitions = new Counter({
    name: "qrfleet_session_transitions_total",
    help: "QR session status changes made by this process, by the status entered",
    labelNames: ["to"] as const,
    registers,
  });
  const ended = new Counter({
    name: "qrfleet_sessions_ended_total",
    help: "QR sessions this process ended, by outcome (the final status) and by what started them",
    labelNames: ["outcome", "trigger"] as const,
    registers,
  });
  const qrCodes = new Counter({ name: "qrfleet_qr_codes_total", help: "Distinct QR images this process stored", registers });
  const notices = new Counter({
    name: "qrfleet_session_notices_total",
    help: "Non-terminal session happenings (duplicate QR, unknown frame type, …)",
    labelNames: ["kind"] as const,
    registers,
  });
  const qrDropped = new Counter({
    name: "qrfleet_qr_dropped_total",
    help: "QR frames overtaken by a newer one before they were due (QRFLEET_QR_MIN_INTERVAL_MS), never stored",
    registers,
  });
  const running = new Gauge({ name: "qrfleet_sessions_running", help: "QR sessions running in this process", registers });
  const deliveries = new Counter({
    name: "qrfleet_deliveries_total",
    help: "Delivery tries made by this process, by channel kind and result (sent, retry, failed, expired)",
    labelNames: ["kind", "result"] as const,
    registers,
  });
  const toWebhook = new Histogram({
    name: "qrfleet_qr_webhook_delivered_seconds",
    help: "From a QR code's arrival from the provider to its webhook answered 2xx, first tries sent by this process",
    buckets: WEBHOOK_BUCKETS,
    registers,
  });
  const toEmail = new Histogram({
    name: "qrfleet_qr_email_accepted_seconds",
    help: "From a QR code's arrival from the provider to its email accepted by SMTP (250), first tries sent by this process",
    buckets: EMAIL_BUCKETS,
    registers,
  });
  const firstQr = new Histogram({
    name: "qrfleet_session_first_qr_seconds",
    help: "From a session's start (the sweep, a schedule, an admin…) to its first QR code stored, by trigger",
    labelNames: ["trigger"] as const,
    buckets: FIRST_QR_BUCKETS,
    registers,
  });
  const attemptSeconds = new Histogram({
    name: "qrfleet_attempt_seconds",
    help: "Duration of a QR session attempt in this process",
    buckets: [1, 5, 15, 30, 60, 100, 130, 300],
    registers,
  });
  const polls = new Counter({
    name: "qrfleet_sweep_polls_total",
    help: "Instance state polls this process's sweep made, by result (ok: the provider answered a state)",
    labelNames: ["result"] as const,
    registers,
  });
  const startedAt = new Map<string, number>();

  events.on("attempt:run", (r) => {
    if (r.running) {
      running.inc();
      startedAt.set(r.sessionId, Date.now());
      return;
    }
    running.dec();
    const started = startedAt.get(r.sessionId);
    if (started !== undefined) attemptSeconds.observe(seconds(started));
    startedAt.delete(r.sessionId);
  });
  events.on("session:transition", (t) => {
    transitions.inc({ to: t.to });
    if (!OPEN_STATUSES.includes(t.to)) ended.inc({ outcome: t.to, trigger: t.trigger });
    log.info({ session: t.sessionId, instance: t.instanceId, from: t.from, to: t.to, attempt: t.attempt, reason: t.reason, nextAttemptInMs: t.nextAttemptInMs }, "session transition");
  });
  events.on("session:qr", (q) => {
    qrCodes.inc();
    if (q.sequence === 1) firstQr.observe({ trigger: q.trigger }, Math.max(0, q.receivedAt.getTime() - q.sessionCreatedAt.getTime()) / 1000);
    log.debug({ session: q.sessionId, attempt: q.attempt, sequence: q.sequence }, "qr stored");
  });
  events.on("session:notice", (n) => {
    notices.inc({ kind: n.kind });
    if (n.kind === "qr_dropped") {
      qrDropped.inc(n.count ?? 0);
      log.warn({ session: n.sessionId, dropped: n.count }, "the provider sent QR codes faster than they are shown: the newest was kept");
    } else if (n.kind !== "opened") log.info({ session: n.sessionId, notice: n.kind, detail: n.detail }, "session notice");
  });
  events.on("sweep:polled", (p) => {
    polls.inc({ result: "ok" }, p.polls - p.errors);
    polls.inc({ result: "error" }, p.errors);
  });
  events.on("instance:state", (s) => log.info({ instance: s.instanceId, state: s.state }, "instance state"));
  events.on("instance:episode", (e) => {
    const level = e.step === "reboot_failed" || e.step === "reboot_refused" ? "warn" : "info";
    log[level]({ instance: e.instanceId, state: e.state, step: e.step, detail: e.detail }, "instance state episode");
  });
  events.on("instance:settings", (e) => {
    const level = e.step === "changed" || e.step === "restored" ? "info" : "warn";
    log[level]({ instance: e.instanceId, step: e.step, detail: e.detail }, "instance webhook settings");
  });
  events.on("delivery:result", (d) => {
    deliveries.inc({ kind: d.kind, result: d.status });
    const line = { deliveryId: d.deliveryId, type: d.type, kind: d.kind, status: d.status, tries: d.tries, err: d.error ?? undefined };
    log[DELIVERY_LEVEL[d.status]](line, d.status === "retry" ? "delivery will be retried" : `delivery ${d.status}`);
    if (d.status !== "sent" || !d.receivedAt) return;
    (d.kind === "email" ? toEmail : toWebhook).observe(seconds(d.receivedAt.getTime()));
  });
  return { registry };
}
