import { describe, expect, it } from "vitest";
import { TEST_FAULTS } from "../../bench/chaos/scenarios.js";
import { expectNothingLost } from "./expectations.js";
import { ownServices } from "./own-services.js";
import { scenarioRunner, SESSIONS } from "./run-scenario.js";

/**
 * kill -9 of one of two daemons at random moments while QR codes are between "received" and
 * "delivered", each restarted after: the survivor (and the restarted one) take the work over.
 */
const services = ownServices();
const run = scenarioRunner(services);

describe("daemons killed mid-run", () => {
  it("kill -9 at random moments: every session ends once, nothing lost, email at most once", async () => {
    const r = await run("daemon-kill-9");
    expectNothingLost(r, SESSIONS, TEST_FAULTS.kills);
    expect(r.injected.filter((i) => i.what.startsWith("kill -9"))).toHaveLength(TEST_FAULTS.kills);
  }, 120_000);
});
