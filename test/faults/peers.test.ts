import { describe, expect, it } from "vitest";
import { expectNothingLost } from "./expectations.js";
import { ownServices } from "./own-services.js";
import { scenarioRunner, SESSIONS } from "./run-scenario.js";

/**
 * The fleet's peers misbehave: the mail server is away, the webhook receiver answers 500, hangs
 * and resets connections, and the provider drops sockets, goes silent and sends garbage.
 */
const services = ownServices();
const run = scenarioRunner(services);

describe("the peers misbehave", () => {
  it("SMTP is down while the first QR emails go out: every outcome email still arrives, once", async () => {
    const r = await run("smtp-outage");
    expectNothingLost(r, SESSIONS);
    expect(r.verdict.emails.received).toBeGreaterThan(0);
  }, 120_000);

  it("the webhook receiver answers 500, then hangs, then resets: QR updates expire, outcomes all land", async () => {
    const r = await run("webhook-receiver-faults");
    expectNothingLost(r, SESSIONS);
    expect(r.captured.webhooks.map((w) => w.answer)).toEqual(expect.arrayContaining(["error500", "hang", "reset"]));
  }, 120_000);

  it("the provider drops sockets, goes silent and sends garbage: every session still ends", async () => {
    const r = await run("provider-faults");
    expectNothingLost(r, SESSIONS);
    expect(r.verdict.sessionsByStatus.failed).toBeGreaterThan(0);
  }, 120_000);
});
