import { afterAll, describe, expect, it } from "vitest";
import { FleetRun, idInstanceOf } from "../../bench/chaos/fleet-run.js";
import { queryOnce } from "../../bench/chaos/query.js";
import { FAST_TIMINGS } from "../../bench/chaos/timings.js";
import { waitFor } from "../support/fleet.js";
import { ownServices } from "./own-services.js";

/**
 * PostgreSQL going away at the worst moments, on the suite's own cluster, against a daemon
 * process: while a scan arrives, and while the daemon waits for the answer to a webhook and an
 * email it must then record. One session each, with a long rotation, so the moment is exact.
 */

const services = ownServices();
const runs: FleetRun[] = [];
afterAll(async () => {
  await Promise.allSettled(runs.map((r) => r.close()));
}, 60_000);

// One QR per socket (rotation past the window): no QR image is stored while PostgreSQL is away.
// A receiver held across a PostgreSQL stop must not time out: on a loaded machine the stop alone can take seconds.
const ONE_QR = { ...FAST_TIMINGS, rotationMs: 60_000, windowMs: 20_000, webhookTimeoutMs: 20_000 };

type RunOptions = Parameters<typeof FleetRun.open>[0];

/** One instance; its daemon is started by the test, once the peers are set. */
async function oneSession(name: string, scriptFor: RunOptions["scriptFor"], extra: Partial<RunOptions> = {}): Promise<FleetRun> {
  const run = await FleetRun.open({ name, pg: services.pg, redis: services.redis, sessions: 1, daemons: 1, timings: ONE_QR, scriptFor, startDaemons: false, ...extra });
  runs.push(run);
  return run;
}

const row = async <R extends Record<string, unknown>>(run: FleetRun, sql: string) => (await queryOnce<R>(run.databaseUrl, sql))[0];

const sessionEnded = (run: FleetRun) =>
  waitFor("the session to end", async () => {
    const s = await row<{ status: string; phone: string | null }>(run, `SELECT status::text, phone FROM "QrSession"`).catch(() => undefined);
    return s && s.status !== "queued" && s.status !== "running" ? s : null;
  }, 60_000, 200);

describe("PostgreSQL away at the worst moment", () => {
  it("a scan that arrives while PostgreSQL is down is recorded once it is back: the wrong phone is caught", async () => {
    const run = await oneSession("scan-while-away", () => ({ fate: "scan", scanAfterMs: 2_500 }), { expectedPhone: "79990000000" });
    await run.startDaemons(); // its start-up sweep starts the session
    await waitFor("the first QR to land", async () => run.receiver.landed.size > 0, 20_000);
    await services.pg.stop();
    await waitFor("the phone to scan", async () => run.sim.state(idInstanceOf(0)) === "authorized", 10_000);
    await new Promise((r) => setTimeout(r, 1_000));
    await services.pg.start();

    // Before, the outcome was dropped with the failed write and the next socket said only alreadyLogged.
    const ended = await sessionEnded(run);
    expect(ended).toEqual({ status: "wrong_number", phone: "79001234567" });
    expect(run.sim.connections(idInstanceOf(0))).toBe(1);
    expect(run.unexpectedExits()).toEqual([]);
  }, 90_000);

  it("a webhook and an email answered while PostgreSQL is down are recorded sent, and the webhook is not sent again", async () => {
    const run = await oneSession("answer-while-away", () => ({ fate: "never" }));
    const webhook = run.receiver.holdNext();
    const email = run.sink.holdNext();
    await run.startDaemons();
    await Promise.all([webhook.arrived, email.arrived]);
    await services.pg.stop();
    webhook.release();
    email.release();
    await new Promise((r) => setTimeout(r, 2_000));
    await services.pg.start();

    const first = await waitFor("the first QR's deliveries to be recorded", async () => {
      const r = await queryOnce<{ kind: string; status: string; tries: number; lastError: string | null }>(
        run.databaseUrl,
        `SELECT c.kind::text, d.status::text, d.tries, d."lastError" FROM "Delivery" d JOIN "Channel" c ON c.id = d."channelId"
         JOIN "Event" e ON e.id = d."eventId" WHERE e.type = 'qr.updated' ORDER BY c.kind`,
      ).catch(() => []);
      return r.length === 2 && r.every((d) => d.status !== "pending") ? r : null;
    }, 30_000, 200);
    // Before, the result was given up after 0.6 s: the webhook went out again after the lease, and
    // the email, whose hand-off was recorded, was marked failed as interrupted though it had arrived.
    expect(first).toEqual([
      { kind: "email", status: "sent", tries: 1, lastError: null },
      { kind: "webhook", status: "sent", tries: 1, lastError: null },
    ]);
    expect([...run.receiver.landed.values()]).toEqual([1]);
    expect(run.captured.emails).toHaveLength(1);
    expect(run.unexpectedExits()).toEqual([]);
  }, 90_000);
});
