import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { Logger } from "../log.js";
import type { FleetEvents } from "./events.js";

/** Logs and metrics listen to fleet events; business code never calls them directly. */
export interface FleetMetrics {
  registry: Registry;
}

export function observeFleet(events: FleetEvents, log: Logger, registry = new Registry()): FleetMetrics {
  collectDefaultMetrics({ register: registry, prefix: "qrfleet_process_" });
  const transitions = new Counter({
    name: "qrfleet_session_transitions_total",
    help: "QR session status changes, by the status entered",
    labelNames: ["to"] as const,
    registers: [registry],
  });
  const qrCodes = new Counter({ name: "qrfleet_qr_codes_total", help: "Distinct QR images stored", registers: [registry] });
  const notices = new Counter({
    name: "qrfleet_session_notices_total",
    help: "Non-terminal session happenings (duplicate QR, unknown frame type, …)",
    labelNames: ["kind"] as const,
    registers: [registry],
  });
  const qrDropped = new Counter({
    name: "qrfleet_qr_dropped_total",
    help: "QR frames overtaken by a newer one before they were due (QRFLEET_QR_MIN_INTERVAL_MS), never stored",
    registers: [registry],
  });
  const running = new Gauge({ name: "qrfleet_sessions_running", help: "QR sessions running in this process", registers: [registry] });
  const deliveries = new Counter({
    name: "qrfleet_deliveries_total",
    help: "Delivery attempts by result",
    labelNames: ["status"] as const,
    registers: [registry],
  });
  const qrToDelivered = new Histogram({
    name: "qrfleet_qr_delivery_seconds",
    help: "From a QR code's arrival to its delivery being accepted (webhook 2xx, SMTP 250), first tries",
    labelNames: ["kind"] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  const attemptSeconds = new Histogram({
    name: "qrfleet_attempt_seconds",
    help: "Duration of a QR session attempt in this process",
    buckets: [1, 5, 15, 30, 60, 100, 130, 300],
    registers: [registry],
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
    if (started !== undefined) attemptSeconds.observe((Date.now() - started) / 1000);
    startedAt.delete(r.sessionId);
  });
  events.on("session:transition", (t) => {
    transitions.inc({ to: t.to });
    log.info({ session: t.sessionId, instance: t.instanceId, from: t.from, to: t.to, attempt: t.attempt, reason: t.reason, nextAttemptInMs: t.nextAttemptInMs }, "session transition");
  });
  events.on("session:qr", (q) => {
    qrCodes.inc();
    log.debug({ session: q.sessionId, attempt: q.attempt, sequence: q.sequence }, "qr stored");
  });
  events.on("session:notice", (n) => {
    notices.inc({ kind: n.kind });
    if (n.kind === "qr_dropped") {
      qrDropped.inc(n.count ?? 0);
      log.warn({ session: n.sessionId, dropped: n.count }, "the provider sent QR codes faster than they are shown: the newest was kept");
    } else if (n.kind !== "opened") log.info({ session: n.sessionId, notice: n.kind, detail: n.detail }, "session notice");
  });
  events.on("instance:state", (s) => log.info({ instance: s.instanceId, state: s.state }, "instance state"));
  events.on("instance:episode", (e) => {
    const level = e.step === "reboot_failed" || e.step === "reboot_refused" ? "warn" : "info";
    log[level]({ instance: e.instanceId, state: e.state, step: e.step, detail: e.detail }, "instance state episode");
  });
  events.on("delivery:result", (d) => {
    deliveries.inc({ status: d.status });
    if (d.status === "sent" && d.kind && d.receivedAt) qrToDelivered.observe({ kind: d.kind }, (Date.now() - d.receivedAt.getTime()) / 1000);
  });
  return { registry };
}
