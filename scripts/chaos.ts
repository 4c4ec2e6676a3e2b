// npm run chaos: faults injected into running daemons under a few hundred sessions with webhook
// and email operators, each on PostgreSQL and Redis of the run's own. Progress on stderr; the
// summary per scenario on stdout; exit 1 when anything was lost or duplicated. See README.md.
import { ChaosUsageError, parseChaosArgs, type ChaosArgs } from "../bench/chaos/chaos-args.js";
import { startOwnPostgres } from "../bench/chaos/own-postgres.js";
import { startOwnRedis } from "../bench/chaos/own-redis.js";
import { runScenario, type ScenarioReport } from "../bench/chaos/scenario.js";
import { scenarios, TEST_FAULTS } from "../bench/chaos/scenarios.js";
import { formatSummary, isClean } from "../bench/chaos/summary.js";
import { Teardown } from "../bench/teardown.js";

const NAMES = scenarios(TEST_FAULTS).map((s) => s.name);

function argsOrExit(): ChaosArgs {
  try {
    const parsed = parseChaosArgs(process.argv.slice(2), NAMES);
    if (parsed === "help") process.exit(0);
    return parsed;
  } catch (err) {
    if (!(err instanceof ChaosUsageError)) throw err;
    process.stderr.write(`qrfleet chaos: ${err.message}\n(npm run chaos -- --help lists the options)\n`);
    process.exit(2);
  }
}

const args = argsOrExit();
const teardown = new Teardown();
let signals = 0;
for (const name of ["SIGINT", "SIGTERM"] as const) {
  process.on(name, () => {
    if (++signals > 1) process.exit(130);
    process.stderr.write(`chaos: ${name}: stopping everything it started\n`);
    void teardown.run().then(() => process.exit(130));
  });
}

async function main(): Promise<ScenarioReport[]> {
  const pg = await startOwnPostgres();
  teardown.add("stop the run's PostgreSQL and delete its directory", () => pg.destroy());
  const redis = await startOwnRedis();
  teardown.add("stop the run's redis-server", () => redis.stop());
  process.stderr.write(`chaos: own PostgreSQL on port ${pg.port}, own Redis on port ${redis.port}\n`);
  const chosen = scenarios(args.faults).filter((s) => args.scenarios.length === 0 || args.scenarios.includes(s.name));
  const reports: ScenarioReport[] = [];
  for (const def of chosen) {
    process.stderr.write(`chaos: ${def.name}: ${args.sessions} sessions, ${def.daemons} daemon(s)\n`);
    let untrack: (() => Promise<void>) | undefined;
    const report = await runScenario(def, {
      pg, redis, sessions: args.sessions, timings: args.timings, settleBoundMs: args.settleMs, keepLogs: args.keepLogs,
      opened: (run) => void (untrack = teardown.add(`close the ${def.name} fleet`, () => run.close(args.keepLogs))),
    });
    await untrack?.();
    process.stderr.write(`chaos: ${def.name}: done in ${report.durationS} s${report.logDir ? `, logs in ${report.logDir}` : ""}\n`);
    reports.push(report);
  }
  return reports;
}

try {
  const reports = await main();
  await teardown.run();
  process.stdout.write(`${formatSummary(reports)}\n`);
  const dirty = reports.filter((r) => !isClean(r)).map((r) => r.name);
  process.stdout.write(dirty.length === 0 ? "\nchaos: nothing lost, nothing duplicated\n" : `\nchaos: lost or duplicated work in ${dirty.join(", ")}\n`);
  process.exit(dirty.length === 0 ? 0 : 1);
} catch (err) {
  process.stderr.write(`chaos: ${(err as Error).message}\n`);
  await teardown.run();
  process.exit(1);
}
