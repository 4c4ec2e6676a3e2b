import { randomInt } from "node:crypto";
import type { Script } from "../../src/simulator/index.js";
import { idInstanceOf } from "./fleet-run.js";
import { queryOnce } from "./query.js";
import type { ScenarioContext, ScenarioDefinition } from "./scenario.js";

/**
 * The faults of a chaos run, one scenario each. Every scenario runs a mixed fleet: half the
 * instances are scanned a few seconds into their first socket (so many sessions are between
 * "QR received" and "linked" when the fault lands), four in ten are never scanned (two attempts,
 * then timed_out, with first-QR and outcome emails), one in ten is already linked.
 */
export interface FaultParams {
  /** How long the mail server stays away. `npm run chaos`: a minute. */
  smtpOutageMs: number;
  /** How long each webhook fault (500s, hangs, resets) lasts. */
  webhookFaultMs: number;
  pgDownMs: number;
  redisDownMs: number;
  /** kill -9 of a daemon, each at a random moment of the run, each daemon restarted after. */
  kills: number;
  /** The window in which kills and provider changes land, from the sessions' start, in ms. */
  spreadMs: number;
}

export const TEST_FAULTS: FaultParams = { smtpOutageMs: 4_000, webhookFaultMs: 1_500, pgDownMs: 3_000, redisDownMs: 2_000, kills: 2, spreadMs: 6_000 };

/** A mixed fleet; `i` is the instance's index in the run. */
export function mixedFleet(i: number): Partial<Script> {
  const slot = i % 10;
  if (slot < 5) return { fate: "scan", scanAfterMs: 1_200 + (i % 7) * 300 };
  if (slot < 9) return { fate: "never" };
  return { fate: "authorized" };
}

/** The provider misbehaving: sockets dropped mid-rotation, silent sockets, garbage frames, error frames, beside healthy ones. */
export function hostileProvider(i: number): Partial<Script> {
  switch (i % 8) {
    case 0:
      return { fate: "drop", dropAfterMs: 1_500 };
    case 1:
      return { fate: "silence" };
    case 2:
      return { fate: "garbage", garbage: "not_json" };
    case 3:
      return { fate: "garbage", garbage: "not_png" };
    case 4:
      return { fate: "provider_error" };
    case 5:
      return { fate: "unknown_type" };
    default:
      return mixedFleet(i);
  }
}

const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Moments in [from, to) ms, sorted: where the kills land. */
function randomMoments(n: number, from: number, to: number): number[] {
  return Array.from({ length: n }, () => randomInt(from, Math.max(from + 1, to))).sort((a, b) => a - b);
}

export function scenarios(f: FaultParams): ScenarioDefinition[] {
  let smtpBack: Promise<void> = Promise.resolve();
  return [
    {
      name: "postgres-restart",
      daemons: 1,
      scriptFor: mixedFleet,
      async inject(s) {
        await s.at(2_000);
        s.note(`PostgreSQL stopped (fast shutdown), down ${f.pgDownMs / 1000} s`);
        await s.pg.stop();
        await wait(f.pgDownMs);
        await s.pg.start();
        s.note("PostgreSQL started");
      },
    },
    {
      name: "redis-restart-and-flush",
      daemons: 1,
      scriptFor: mixedFleet,
      async inject(s) {
        await s.at(2_000);
        s.note(`Redis killed, down ${f.redisDownMs / 1000} s (nothing on disk: every queue is gone)`);
        await s.redis.restart(f.redisDownMs);
        s.note("Redis started, empty");
        await s.at(2_000 + f.redisDownMs + 4_000);
        await s.redis.flushAll();
        s.note("Redis FLUSHALL");
      },
    },
    {
      name: "smtp-outage",
      daemons: 1,
      scriptFor: mixedFleet,
      async before(s) {
        s.note(`SMTP server closed for ${f.smtpOutageMs / 1000} s`);
        smtpBack = s.run.sink.outage(f.smtpOutageMs).then(() => s.note("SMTP server reopened on the same port"));
        smtpBack.catch(() => undefined); // awaited in inject, which reports the failure
      },
      async inject() {
        await smtpBack;
      },
    },
    {
      name: "webhook-receiver-faults",
      daemons: 1,
      scriptFor: mixedFleet,
      async inject(s) {
        await s.at(1_000);
        for (const [answer, what] of [["error500", "answers 500"], ["hang", "hangs past the daemon's timeout"], ["reset", "resets connections"]] as const) {
          s.run.receiver.fault(answer);
          s.note(`receiver ${what} for ${f.webhookFaultMs / 1000} s`);
          await wait(f.webhookFaultMs);
        }
        s.run.receiver.fault("ok");
        s.note("receiver answers 200 again");
      },
    },
    {
      name: "daemon-kill-9",
      daemons: 2,
      scriptFor: mixedFleet,
      async inject(s) {
        for (const moment of randomMoments(f.kills, 800, f.spreadMs)) await killAndRestart(s, moment);
      },
    },
    {
      name: "provider-faults",
      daemons: 1,
      scriptFor: hostileProvider,
      async inject(s) {
        s.note("provider: 1 in 8 sockets dropped, silent, not JSON, not PNG, error frame, unknown frame type (from the start)");
        await s.at(f.spreadMs / 2);
        // Instances that were healthy go bad for their next sockets: second attempts meet a different provider.
        for (let i = 6; i < s.run.opts.sessions; i += 8) s.run.sim.script(idInstanceOf(i), { fate: "drop", dropAfterMs: 500 });
        s.note("provider: a quarter of the healthy instances drop every later socket after 0.5 s");
      },
    },
  ];
}

async function killAndRestart(s: ScenarioContext, moment: number): Promise<void> {
  await s.at(moment);
  const { index, running } = await busiestDaemon(s);
  await s.run.kill9(index);
  s.note(`kill -9 daemon ${index + 1} (running ${running} sessions)`);
  await wait(1_000);
  await s.run.startDaemon(index);
  s.note(`daemon ${index + 1} started again`);
}

/** The daemon running the most sessions now (QrAttempt.worker names its pid): a kill there hits QR codes in flight. */
async function busiestDaemon(s: ScenarioContext): Promise<{ index: number; running: number }> {
  const rows = await queryOnce<{ worker: string; n: number }>(
    s.run.databaseUrl,
    `SELECT a.worker, count(*)::int AS n FROM "QrAttempt" a JOIN "QrSession" q ON q.id = a."sessionId" AND q.attempt = a.number
     WHERE q.status = 'running' AND a.worker IS NOT NULL GROUP BY a.worker`,
  );
  const byPid = new Map(rows.map((r) => [Number(r.worker.split(":").at(-2)), r.n]));
  const alive = s.run.daemons.filter((d) => d.child.exitCode === null && d.child.signalCode === null);
  const best = alive.reduce((a, d) => ((byPid.get(d.pid) ?? 0) > (byPid.get(a.pid) ?? 0) ? d : a), alive[randomInt(0, alive.length)]!);
  return { index: best.index, running: byPid.get(best.pid) ?? 0 };
}

/** The scenario called `name`. */
export function scenarioNamed(name: string, f: FaultParams): ScenarioDefinition {
  const found = scenarios(f).find((s) => s.name === name);
  if (!found) throw new Error(`no scenario named ${name} (there are ${scenarios(f).map((s) => s.name).join(", ")})`);
  return found;
}
