import { afterAll } from "vitest";
import { runScenario, type ScenarioReport } from "../../bench/chaos/scenario.js";
import { scenarioNamed, TEST_FAULTS } from "../../bench/chaos/scenarios.js";
import { formatSummary } from "../../bench/chaos/summary.js";
import { FAST_TIMINGS } from "../../bench/chaos/timings.js";
import { expectNoSecretsWritten } from "./no-secrets.js";
import type { ownServices } from "./own-services.js";

/** A few hundred sessions: enough that a fault lands on sessions in every state, small enough for two cores. */
export const SESSIONS = 200;
/** Past the faults, the time for the last attempts (two windows of 5 s, backoff) and their deliveries. */
const SETTLE_BOUND_MS = 60_000;

/**
 * Runs scenarios of TEST_FAULTS on the file's own services, and searches what each one wrote for
 * the secrets it was given; their summary is printed when the file ends.
 */
export function scenarioRunner(services: ReturnType<typeof ownServices>) {
  const reports: ScenarioReport[] = [];
  afterAll(() => {
    if (reports.length > 0) console.log(formatSummary(reports));
  });
  return async (name: string): Promise<ScenarioReport> => {
    const report = await runScenario(scenarioNamed(name, TEST_FAULTS), {
      pg: services.pg, redis: services.redis, sessions: SESSIONS, timings: FAST_TIMINGS, settleBoundMs: SETTLE_BOUND_MS,
    });
    reports.push(report);
    await expectNoSecretsWritten(report, services.redis.url);
    return report;
  };
}
