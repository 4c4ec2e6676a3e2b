import type { LedgerResult } from "../ledger.js";
import type { Captured } from "./captured.js";
import { FleetRun, type FleetRunOptions } from "./fleet-run.js";
import type { OwnPostgres } from "./own-postgres.js";
import type { OwnRedis } from "./own-redis.js";
import type { Timings } from "./timings.js";
import { queryOnce } from "./query.js";
import { judge, type Verdict } from "./verdict.js";

/**
 * One fault scenario, start to verdict: open a fleet, start every session, inject the faults
 * (each one noted with the second it happened), wait until PostgreSQL says nothing is open or
 * owed any more, then judge. The fleet is closed whatever happens.
 */
export interface Injection {
  atS: number;
  /** Date.now() when it was noted, on the receiver's clock. */
  atMs: number;
  what: string;
}

export interface ScenarioContext {
  run: FleetRun;
  pg: OwnPostgres;
  redis: OwnRedis;
  /** Records what was injected, at the run's clock. */
  note(what: string): void;
  /** Resolves `ms` after the sessions were started. */
  at(ms: number): Promise<void>;
}

export interface ScenarioDefinition {
  name: string;
  daemons: number;
  scriptFor: FleetRunOptions["scriptFor"];
  /** Runs before the sessions are started (a fault that must already be there when the first QR arrives). */
  before?(s: ScenarioContext): Promise<void>;
  inject(s: ScenarioContext): Promise<void>;
}

export interface ScenarioReport {
  name: string;
  injected: Injection[];
  /** The scenario's database on the run's own cluster (it lives as long as the cluster). */
  databaseUrl: string;
  verdict: Verdict;
  /** The provider's frames against what landed (bench/ledger.ts): frames sent while a daemon was dead are unseen by design. */
  frames: Pick<LedgerResult, "sent" | "delivered" | "superseded" | "lost">;
  /** Daemons the scenario did not stop or kill that exited anyway: must be empty. */
  unexpectedExits: string[];
  /** The bound of the settle was reached with work still open. */
  settleTimedOut: boolean;
  durationS: number;
  captured: Captured;
  /** Where the daemons' logs were kept, with keepLogs. */
  logDir: string | null;
}

export interface ScenarioParams {
  pg: OwnPostgres;
  redis: OwnRedis;
  sessions: number;
  timings: Timings;
  /** How long to wait, after the faults, for every session to end and every delivery to be final. */
  settleBoundMs: number;
  /** Keep the daemons' log directory (its path is in the report). Default: false */
  keepLogs?: boolean;
  /** Told of the fleet as soon as it exists, so an interrupted run can still close it. */
  opened?(run: FleetRun): void;
}

export async function runScenario(def: ScenarioDefinition, p: ScenarioParams): Promise<ScenarioReport> {
  const run = await FleetRun.open({ name: def.name, pg: p.pg, redis: p.redis, sessions: p.sessions, daemons: def.daemons, timings: p.timings, scriptFor: def.scriptFor });
  p.opened?.(run);
  const injected: Injection[] = [];
  let t0 = Date.now();
  const s: ScenarioContext = {
    run, pg: p.pg, redis: p.redis,
    note: (what) => {
      const atMs = Date.now();
      injected.push({ atS: Math.round((atMs - t0) / 100) / 10, atMs, what });
    },
    at: (ms) => new Promise((r) => setTimeout(r, Math.max(0, t0 + ms - Date.now()))),
  };
  try {
    await def.before?.(s);
    t0 = Date.now();
    await run.enqueueAll();
    await def.inject(s);
    const settleTimedOut = !(await settle(run, p.settleBoundMs));
    const verdict = await judge(run.databaseUrl, run.receiver, run.captured);
    const { sent, delivered, superseded, lost } = run.ledger.result();
    return {
      name: def.name, injected, databaseUrl: run.databaseUrl, verdict, frames: { sent, delivered, superseded, lost },
      unexpectedExits: run.unexpectedExits(), settleTimedOut, durationS: Math.round((Date.now() - t0) / 100) / 10, captured: run.captured,
      logDir: p.keepLogs ? run.runDir : null,
    };
  } finally {
    await run.close(p.keepLogs);
  }
}

const OPEN_WORK_SQL = `SELECT
  (SELECT count(*) FROM "QrSession" WHERE status IN ('queued', 'running'))::int +
  (SELECT count(*) FROM "Delivery" WHERE status = 'pending')::int AS n`;
/** Nothing open, and nothing reached the receiver for this long: what was sent has arrived. */
const QUIET_MS = 1_500;

/** True once no session is open and no delivery pending (and the receiver is quiet); false at the bound. */
async function settle(run: FleetRun, boundMs: number): Promise<boolean> {
  const deadline = Date.now() + boundMs;
  while (Date.now() < deadline) {
    const open = await openWork(run.databaseUrl).catch(() => -1);
    const quiet = Date.now() - Math.max(run.receiver.lastRequestAt, lastEmailAt(run.captured)) > QUIET_MS;
    if (open === 0 && quiet) return true;
    await new Promise((r) => setTimeout(r, 250));
  }
  return false;
}

const lastEmailAt = (c: Captured) => c.emails.at(-1)?.at ?? 0;

async function openWork(databaseUrl: string): Promise<number> {
  return (await queryOnce<{ n: number }>(databaseUrl, OPEN_WORK_SQL))[0]!.n;
}
