// The bare poller: the cheapest program that keeps a fleet's state checked, in a child process of
// its own so its CPU is measured alone. Each instance is asked getStateInstance once per interval,
// at its own phase of it, over keep-alive connections; the answers are written 500 at a time, one
// UPDATE … FROM unnest() each. Nothing else — no queue, no retries, no sessions, no episodes —
// which is why it is the floor the daemon's sweep is compared with.
import pg from "pg";
import { Pool as HttpPool } from "undici";
import { logFailure } from "./child-log.js";
import { serveParent } from "./ipc.js";
import { watchInstances, type FleetSpec } from "./watch-fleet.js";

export interface FloorPollerConfig {
  simUrl: string;
  fleet: FleetSpec;
  databaseUrl: string;
  intervalMs: number;
  /** The provider's answer time: sizes the connection pool. */
  providerLatencyMs: number;
  /** This poller polls instance i when i % of === index: its share of the fleet. */
  share: { index: number; of: number };
}

export interface FloorPollerCounts {
  /** Requests sent, answers recorded, requests that failed. */
  polls: number;
  answers: number;
  failed: number;
  /** UPDATE statements run, and rows they carried. */
  writes: number;
  written: number;
}

export interface FloorPollerApi {
  start(config: FloorPollerConfig): Promise<void>;
  counts(arg: null): FloorPollerCounts;
  stop(arg: null): Promise<void>;
}

/** Answers per UPDATE, as the daemon's sweep writes a page of 500. */
const BATCH = 500;
/** A partial batch is written after this long, so at a low rate no answer waits long to be recorded. */
const FLUSH_MS = 1_000;
const TICK_MS = 10;
const PG_POOL = 4;

const UPDATE_SQL = `
  UPDATE instance_state s SET state = u.state, checked_at = u.at
  FROM unnest($1::text[], $2::text[], $3::timestamptz[]) AS u(id_instance, state, at)
  WHERE s.id_instance = u.id_instance`;

const counts: FloorPollerCounts = { polls: 0, answers: 0, failed: 0, writes: 0, written: 0 };
let pending: { ids: string[]; states: string[]; ats: Date[] } = { ids: [], states: [], ats: [] };
const timers: NodeJS.Timeout[] = [];
let stopping = false;
let db: pg.Pool;
let http: HttpPool;

function poll(idInstance: string, path: string): void {
  counts.polls += 1;
  http
    .request({ path, method: "GET", headersTimeout: 10_000, bodyTimeout: 10_000 })
    .then(async (res) => {
      const body = (await res.body.json()) as { stateInstance?: unknown };
      if (res.statusCode !== 200 || typeof body.stateInstance !== "string") throw new Error(`getStateInstance answered ${res.statusCode}`);
      counts.answers += 1;
      pending.ids.push(idInstance);
      pending.states.push(body.stateInstance);
      pending.ats.push(new Date());
      if (pending.ids.length >= BATCH) flush();
    })
    .catch((err: unknown) => {
      if (stopping) return; // the pool was destroyed under it
      counts.failed += 1;
      logFailure("state check failed", idInstance, err);
    });
}

function flush(): void {
  if (pending.ids.length === 0) return;
  const batch = pending;
  pending = { ids: [], states: [], ats: [] };
  db.query(UPDATE_SQL, [batch.ids, batch.states, batch.ats]).then(
    () => {
      counts.writes += 1;
      counts.written += batch.ids.length;
    },
    (err: unknown) => logFailure("state write failed", batch.ids[0]!, err),
  );
}

/** Instance i is due at (k + i / n) × interval for every k: the cursor counts polls due since the start. */
function schedule(paths: readonly string[], ids: readonly string[], intervalMs: number): void {
  const startedAt = Date.now();
  let cursor = 0;
  timers.push(
    setInterval(() => {
      const due = Math.floor(((Date.now() - startedAt) / intervalMs) * paths.length);
      for (; cursor < due; cursor += 1) {
        const i = cursor % ids.length;
        poll(ids[i]!, paths[i]!);
      }
    }, TICK_MS),
    setInterval(flush, FLUSH_MS),
  );
}

serveParent<FloorPollerApi>({
  async start(config) {
    const { index, of } = config.share;
    const instances = watchInstances(config.fleet).filter((_, i) => i % of === index);
    const ids = instances.map((i) => i.idInstance);
    db = new pg.Pool({ connectionString: config.databaseUrl, max: PG_POOL, connectionTimeoutMillis: 10_000 });
    await db.query("CREATE TABLE IF NOT EXISTS instance_state (id_instance text PRIMARY KEY, state text, checked_at timestamptz)");
    await db.query("INSERT INTO instance_state (id_instance) SELECT unnest($1::text[]) ON CONFLICT DO NOTHING", [ids]);
    // Twice the polls in flight at an even pace, so a connection is always free.
    const inFlight = (instances.length / config.intervalMs) * Math.max(config.providerLatencyMs, 1);
    http = new HttpPool(config.simUrl, { connections: Math.ceil(2 * inFlight) + 8, keepAliveTimeout: 60_000 });
    const paths = instances.map((i) => `/waInstance${i.idInstance}/getStateInstance/${i.token}`);
    schedule(paths, ids, config.intervalMs);
  },
  counts: () => ({ ...counts }),
  async stop() {
    stopping = true;
    for (const timer of timers) clearInterval(timer);
    await Promise.allSettled([http?.destroy(), db?.end()]);
    setImmediate(() => process.exit(0));
  },
});
