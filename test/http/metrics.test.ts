import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { FleetContext } from "../../src/fleet/context.js";
import { addOperator, setChannelMode } from "../../src/fleet/operators/operators.js";
import { startSimulator, type Simulator } from "../../src/simulator/index.js";
import { simulatedInstance, testFleet, waitFor } from "../support/fleet.js";
import { startReceiver, type Receiver } from "../support/receiver.js";
import { startSmtp, type TestSmtp } from "../support/smtp.js";
import { spawnDaemon, type Spawned } from "../support/spawn.js";

/**
 * A real daemon does real work (a sweep finds three instances logged out and one blocked; two are
 * scanned, one times out; every QR goes out by webhook and email), then its /metrics is scraped
 * and checked the way an operator would: by promtool, by the numbers it shows, and against the
 * Prometheus rules and the Grafana dashboard shipped in deploy/.
 */

const ROOT = path.resolve(import.meta.dirname, "../..");
const PROMTOOL = process.env.PROMTOOL ?? "promtool";

let sim: Simulator;
let receiver: Receiver;
let smtp: TestSmtp;
let fleet: FleetContext & { close(): Promise<void> };
let daemon: Spawned;
let scrape: string;
const secrets: string[] = [];
const instanceIds: string[] = [];

/** Runs promtool, or fails saying how to get it: a missing linter must never pass as a clean one. */
function promtool(args: string[], input?: string): { status: number | null; output: string } {
  const run = spawnSync(PROMTOOL, args, { cwd: ROOT, input, encoding: "utf8", timeout: 20_000 });
  if ((run.error as NodeJS.ErrnoException | undefined)?.code === "ENOENT") {
    throw new Error("promtool is not installed: `apt-get install -y prometheus` (Debian) provides /usr/bin/promtool, or set PROMTOOL to its path");
  }
  if (run.error) throw run.error;
  return { status: run.status, output: `${run.stdout}${run.stderr}`.trim() };
}

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

function samples(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split("\n")) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)$/.exec(line);
    if (!m) continue;
    const labels = Object.fromEntries([...(m[2] ?? "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((l) => [l[1]!, l[2]!]));
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

/** The value of one series (0 when absent, as a counter that never moved). */
function value(name: string, labels: Record<string, string> = {}): number {
  const hit = samples(scrape).find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  return hit?.value ?? 0;
}

/** Every name a query may use: each family, and a histogram's _bucket, _sum and _count. */
function exposedNames(text: string): Set<string> {
  const names = new Set<string>();
  for (const [, name, type] of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    names.add(name!);
    if (type === "histogram" || type === "summary") for (const s of ["_bucket", "_sum", "_count"]) names.add(`${name}${s}`);
  }
  return names;
}

const queried = (expr: string) => [...expr.matchAll(/\b(?:qrfleet|process|nodejs)_[a-z0-9_]+\b/g)].map((m) => m[0]);

beforeAll(async () => {
  sim = await startSimulator({ defaults: { fate: "scan", rotationMs: 200, scanAfterMs: 700, scanWindowMs: 1500 } });
  receiver = await startReceiver();
  smtp = await startSmtp();
  fleet = testFleet({});
  const scanned = [await simulatedInstance(fleet, sim, {}), await simulatedInstance(fleet, sim, {})];
  const unscanned = await simulatedInstance(fleet, sim, { fate: "never" });
  const blocked = await simulatedInstance(fleet, sim, {});
  sim.setState(blocked.idInstance, "blocked");
  for (const i of [...scanned, unscanned, blocked]) {
    secrets.push(i.token);
    instanceIds.push(i.id, i.idInstance);
  }
  // No assignments: a fleet-wide default operator, told about every instance.
  const ops = await addOperator(fleet, { name: "metrics-ops", email: "ops@metrics.test", webhook: `${receiver.url}/hooks` });
  await setChannelMode(fleet, ops.operator.channels.find((c) => c.kind === "email")!.id, "immediate");
  secrets.push(ops.webhookSecret!);

  // The daemon sweeps at start: three sessions (trigger sweep), none for the blocked instance.
  daemon = spawnDaemon({ SMTP_URL: smtp.url, QRFLEET_SESSION_ATTEMPTS: "1" });
  const started = await daemon.waitForLine(/"url":"http[^"]+".*qrfleet daemon started/, 30_000);
  const url = /"url":"(http[^"]+)"/.exec(started)![1]!;
  await waitFor("the three sessions to end", async () => (await fleet.db.qrSession.count({ where: { endedAt: { not: null } } })) === 3, 30_000);
  await waitFor("the blocked instance's alert", async () => (await fleet.db.stateEpisode.count({ where: { alertedAt: { not: null } } })) === 1, 20_000);
  await waitFor("every delivery to be final", async () => (await fleet.db.delivery.count({ where: { status: "pending" } })) === 0, 20_000);
  await waitFor("both scans confirmed", async () => (await fleet.db.instance.count({ where: { lastState: "authorized" } })) === 2);
  scrape = await (await fetch(`${url}/metrics`)).text();
}, 60_000);

afterAll(async () => {
  if (daemon && daemon.child.exitCode === null) {
    daemon.child.kill("SIGTERM");
    await daemon.exited;
  }
  await fleet?.close();
  await Promise.all([sim?.close(), receiver?.close(), smtp?.close()]);
});

describe("/metrics of a daemon that has done some work", () => {
  it("passes promtool check metrics with no finding", () => {
    expect(promtool(["check", "metrics"], scrape)).toEqual({ status: 0, output: "" });
  });

  it("counts sessions by outcome and trigger, QR codes, and deliveries by channel kind and result", async () => {
    expect(value("qrfleet_sessions_ended_total", { outcome: "authorized", trigger: "sweep" })).toBe(2);
    expect(value("qrfleet_sessions_ended_total", { outcome: "timed_out", trigger: "sweep" })).toBe(1);
    expect(value("qrfleet_qr_codes_total")).toBe(await fleet.db.qrCode.count());
    for (const kind of ["webhook", "email"] as const) {
      const sent = await fleet.db.delivery.count({ where: { status: "sent", channel: { kind } } });
      expect(sent).toBeGreaterThan(0);
      expect(value("qrfleet_deliveries_total", { kind, result: "sent" })).toBe(sent);
    }
  });

  it("times each QR to its webhook and its email, and each session's start to its first QR", async () => {
    const qrSent = (kind: "webhook" | "email") => fleet.db.delivery.count({ where: { status: "sent", channel: { kind }, event: { type: "qr.updated" } } });
    expect(value("qrfleet_qr_webhook_delivered_seconds_count")).toBe(await qrSent("webhook"));
    expect(value("qrfleet_qr_email_accepted_seconds_count")).toBe(await qrSent("email"));
    expect(value("qrfleet_qr_webhook_delivered_seconds_bucket", { le: "+Inf" })).toBe(await qrSent("webhook"));
    expect(value("qrfleet_session_first_qr_seconds_count", { trigger: "sweep" })).toBe(3);
  });

  it("shows the fleet from PostgreSQL and Redis: instances by state, the longest unlinked, queue depths", () => {
    expect(value("qrfleet_instances", { state: "authorized" })).toBe(2);
    expect(value("qrfleet_instances", { state: "notAuthorized" })).toBe(1);
    expect(value("qrfleet_instances", { state: "blocked" })).toBe(1);
    expect(value("qrfleet_alerts_open", { kind: "blocked" })).toBe(1);
    expect(samples(scrape).some((s) => s.name === "qrfleet_instances" && s.labels.state === "sleepMode" && s.value === 0)).toBe(true);
    expect(value("qrfleet_instance_unlinked_longest_seconds")).toBeGreaterThan(0);
    for (const queue of ["qr-session", "notify", "sweep"]) {
      expect(samples(scrape).filter((s) => s.name === "qrfleet_queue_jobs" && s.labels.queue === queue).map((s) => s.labels.state).sort())
        .toEqual(["active", "delayed", "failed", "prioritized", "waiting", "waiting-children"]);
    }
    expect(value("qrfleet_queue_jobs", { queue: "qr-session", state: "active" })).toBe(0);
    expect(value("qrfleet_fleet_source_up", { source: "postgresql" })).toBe(1);
    expect(value("qrfleet_fleet_source_up", { source: "redis" })).toBe(1);
  });

  it("names no instance and carries no secret in any label", () => {
    const labelValues = samples(scrape).flatMap((s) => Object.values(s.labels));
    for (const id of instanceIds) expect(labelValues).not.toContain(id);
    for (const secret of secrets) expect(scrape).not.toContain(secret);
    expect(samples(scrape).some((s) => s.name.startsWith("qrfleet_process_"))).toBe(false);
  });
});

describe("deploy/: the Prometheus rules and the Grafana dashboard", () => {
  it("the alert rules pass promtool check rules and their unit tests, and query only metrics the daemon exposes", () => {
    expect(promtool(["check", "rules", "deploy/prometheus-rules.yaml"])).toMatchObject({ status: 0 });
    expect(promtool(["test", "rules", "deploy/prometheus-rules.test.yaml"])).toMatchObject({ status: 0 });
    const rules = readFileSync(path.join(ROOT, "deploy/prometheus-rules.yaml"), "utf8");
    const used = new Set(queried(rules));
    expect(used.size).toBeGreaterThan(5);
    const missing = [...used].filter((n) => !exposedNames(scrape).has(n));
    expect(missing).toEqual([]);
  });

  it("the dashboard is valid JSON whose every panel queries metrics the daemon exposes, covering the fleet metrics", () => {
    const dashboard = JSON.parse(readFileSync(path.join(ROOT, "deploy/grafana-dashboard.json"), "utf8")) as { panels: Panel[] };
    const panels = flatten(dashboard.panels).filter((p) => p.type !== "row");
    expect(panels.length).toBeGreaterThan(5);
    const used = new Set<string>();
    for (const panel of panels) {
      const exprs = (panel.targets ?? []).map((t) => t.expr ?? "");
      expect(exprs.length, `panel "${panel.title}" has no query`).toBeGreaterThan(0);
      for (const expr of exprs) for (const name of queried(expr)) used.add(name);
    }
    expect([...used].filter((n) => !exposedNames(scrape).has(n))).toEqual([]);
    const families = [...used].map((n) => n.replace(/_(bucket|sum|count)$/, ""));
    for (const wanted of [
      "qrfleet_sessions_ended_total", "qrfleet_qr_codes_total", "qrfleet_deliveries_total", "qrfleet_queue_jobs", "qrfleet_instances",
      "qrfleet_alerts_open", "qrfleet_session_first_qr_seconds", "qrfleet_qr_webhook_delivered_seconds",
      "qrfleet_qr_email_accepted_seconds", "qrfleet_instance_unlinked_longest_seconds",
    ]) expect(families).toContain(wanted);
  });
});

interface Panel {
  type?: string;
  title?: string;
  targets?: Array<{ expr?: string }>;
  panels?: Panel[];
}

const flatten = (panels: Panel[]): Panel[] => panels.flatMap((p) => [p, ...flatten(p.panels ?? [])]);
