import type { JobType } from "bullmq";
import { Gauge, type Registry } from "prom-client";
import { INSTANCE_STATES } from "../../greenapi/types.js";
import type { FleetContext } from "../context.js";
import { LONGEST_UNLINKED_SECONDS_SQL, openAlertSql } from "./fleet-sql.js";
import { within } from "../../lib/deadline.js";

/**
 * The fleet as PostgreSQL and Redis hold it, read when /metrics is scraped. Every daemon reports
 * the same values, so these are aggregated with max(), never sum() (README, "Metrics").
 */

/**
 * A reading is reused for this long: several Prometheus servers scraping several daemons every
 * few seconds then cost one GROUP BY and three getJobCounts per daemon per interval, not per scrape.
 */
const FLEET_READING_TTL_MS = 5_000;
/** A scrape must answer before Prometheus's own timeout (10 s by default), even with a store hung. */
const READ_TIMEOUT_MS = 2_000;

/** Job states worth watching; completed jobs are removed as they finish (removeOnComplete). */
const JOB_STATES: JobType[] = ["waiting", "prioritized", "active", "delayed", "waiting-children", "failed"];
/** Every state is reported, at 0 too, so a rule on `qrfleet_instances{state="blocked"}` always has a series. */
const STATE_LABELS = [...INSTANCE_STATES, "unknown", "unchecked"];

interface InstanceReading {
  byState: Map<string, number>;
  /** Seconds the longest-unlinked enabled instance has been so; 0 when none is. */
  longestUnlinkedSeconds: number;
}
type QueueReading = Array<{ queue: string; counts: Record<string, number> }>;
type AlertReading = Array<{ kind: string; open: number }>;

/** One statement: enabled instances by last state, and the oldest `unlinkedSince` among them. */
const INSTANCES_SQL = `
  SELECT COALESCE("lastState", 'unchecked') AS state, count(*)::int AS count,
    ${LONGEST_UNLINKED_SECONDS_SQL} AS "unlinkedSeconds"
  FROM "Instance" WHERE enabled GROUP BY 1`;

async function readInstances(ctx: FleetContext): Promise<InstanceReading> {
  const { rows } = await ctx.sql.query<{ state: string; count: number; unlinkedSeconds: number }>(INSTANCES_SQL);
  const byState = new Map<string, number>(STATE_LABELS.map((s) => [s, 0]));
  let longest = 0;
  for (const r of rows) {
    byState.set(r.state, r.count);
    longest = Math.max(longest, r.unlinkedSeconds);
  }
  return { byState, longestUnlinkedSeconds: longest };
}

async function readQueues(ctx: FleetContext): Promise<QueueReading> {
  const { session, notify, sweep } = ctx.queues;
  return Promise.all([session, notify, sweep].map(async (q) => ({ queue: q.name, counts: await q.getJobCounts(...JOB_STATES) })));
}

/** Open alerts by the state they are about: episodes whose operators were told and that have not ended. */
const OPEN_ALERTS_SQL = `
  SELECT state AS kind, count(*)::int AS open FROM "StateEpisode" e WHERE ${openAlertSql("e")} GROUP BY 1`;

async function readOpenAlerts(ctx: FleetContext): Promise<AlertReading> {
  return (await ctx.sql.query<{ kind: string; open: number }>(OPEN_ALERTS_SQL)).rows;
}

/**
 * The last reading of one store, shared by the scrapes within FLEET_READING_TTL_MS; null when it
 * failed. A failed reading leaves the gauges at their last values (an alert on them stays as it
 * was) and sets `qrfleet_fleet_source_up` to 0.
 */
class Reading<T> {
  private at = -Infinity;
  private value: Promise<T | null> = Promise.resolve(null);

  constructor(private readonly read: () => Promise<T>) {}

  get(): Promise<T | null> {
    if (Date.now() - this.at >= FLEET_READING_TTL_MS) {
      this.at = Date.now();
      this.value = within(this.read(), READ_TIMEOUT_MS).catch(() => null);
    }
    return this.value;
  }
}

/**
 * Adds the fleet-wide gauges to `registry` (once: a second call finds them there). Nothing is
 * read until a scrape asks.
 */
export function registerFleetGauges(ctx: FleetContext, registry: Registry): void {
  if (registry.getSingleMetric("qrfleet_instances")) return;
  const instances = new Reading(() => readInstances(ctx));
  const queues = new Reading(() => readQueues(ctx));
  const alerts = new Reading(() => readOpenAlerts(ctx));
  const registers = [registry];
  new Gauge({
    name: "qrfleet_fleet_source_up",
    help: "1 when the last scrape-time reading of this store answered within 2 s; at 0 the gauges it feeds keep their last reading. Fleet-wide",
    labelNames: ["source"] as const,
    registers,
    async collect() {
      const [pg, redis] = await Promise.all([instances.get(), queues.get()]);
      this.set({ source: "postgresql" }, pg ? 1 : 0);
      this.set({ source: "redis" }, redis ? 1 : 0);
    },
  });
  new Gauge({
    name: "qrfleet_instances",
    help: "Enabled instances by last known provider state (unchecked: never polled). Fleet-wide, from PostgreSQL",
    labelNames: ["state"] as const,
    registers,
    async collect() {
      const r = await instances.get();
      if (!r) return;
      this.reset();
      for (const [state, count] of r.byState) this.set({ state }, count);
    },
  });
  new Gauge({
    name: "qrfleet_instance_unlinked_longest_seconds",
    help: "How long the enabled instance unlinked the longest has been unlinked (0: none is). Fleet-wide, from PostgreSQL",
    registers,
    async collect() {
      const r = await instances.get();
      if (r) this.set(r.longestUnlinkedSeconds);
    },
  });
  new Gauge({
    name: "qrfleet_queue_jobs",
    help: "Jobs in each BullMQ queue by state, from BullMQ's own counts. Fleet-wide, from Redis",
    labelNames: ["queue", "state"] as const,
    registers,
    async collect() {
      const r = await queues.get();
      if (!r) return;
      this.reset();
      for (const { queue, counts } of r) {
        for (const state of JOB_STATES) this.set({ queue, state }, counts[state] ?? 0);
      }
    },
  });
  new Gauge({
    name: "qrfleet_alerts_open",
    help: "Operator alerts open (raised and not yet recovered), by kind. Fleet-wide, from PostgreSQL",
    labelNames: ["kind"] as const,
    registers,
    async collect() {
      const r = await alerts.get();
      if (!r) return;
      this.reset();
      for (const { kind, open } of r) this.set({ kind }, open);
    },
  });
}
