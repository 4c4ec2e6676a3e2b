import { describe, it } from "vitest";
import { expectNothingLost } from "./expectations.js";
import { ownServices } from "./own-services.js";
import { scenarioRunner, SESSIONS } from "./run-scenario.js";

/**
 * PostgreSQL restarted and Redis restarted empty, then flushed, under a few hundred sessions with
 * webhook and email operators: the daemon keeps running through both, and once they are back every
 * session ends with one outcome and every delivery lands once.
 */
const services = ownServices();
const run = scenarioRunner(services);

describe("the stores go away mid-run", () => {
  it("PostgreSQL restarts while sessions rotate and scan", async () => {
    expectNothingLost(await run("postgres-restart"), SESSIONS);
  }, 120_000);

  it("Redis restarts with nothing kept, then is flushed: the reconciler rebuilds the queues", async () => {
    expectNothingLost(await run("redis-restart-and-flush"), SESSIONS);
  }, 120_000);
});
