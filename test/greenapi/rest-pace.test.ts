import { randomBytes } from "node:crypto";
import type { ServerResponse } from "node:http";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { ProviderRateLimitedError } from "../../src/greenapi/errors.js";
import { createGreenApiClient, type GreenApiClientOptions } from "../../src/greenapi/rest.js";
import { providerPace } from "../../src/fleet/provider/provider-pace.js";
import { createLogger } from "../../src/log.js";
import { createRedis, redisTarget } from "../../src/queues.js";
import { retryAfterMs } from "../../src/lib/retry-after.js";
import { newIdInstance, testConfig, waitFor } from "../support/fleet.js";
import { json, startProvider, type StandInProvider } from "./provider.js";

const TOKEN = "tok_SECRET_pace0123456789abcdef";
const redis = createRedis(redisTarget(testConfig()), false);
const log = createLogger({ level: "silent" });
let provider: StandInProvider;
/** When each REST request reached the provider, by path (token stripped), in ms since the epoch. */
let arrivals: Array<{ path: string; at: number }>;
let prefix: string;

beforeAll(async () => {
  provider = await startProvider();
});
afterAll(async () => {
  await provider.close();
  redis.disconnect();
});
beforeEach(() => {
  arrivals = [];
  prefix = `qrft_pace_${randomBytes(5).toString("hex")}`;
});

/** The provider answers each request with the next scripted reply; after them, authorized. */
function scriptProvider(...replies: Array<(res: ServerResponse) => void>) {
  provider.rest = (req, res) => {
    arrivals.push({ path: (req.url ?? "").replace(TOKEN, "…"), at: Date.now() });
    const reply = replies.shift();
    if (reply) reply(res);
    else if (req.url?.includes("/logout/")) json(res, 200, { isLogout: true });
    else json(res, 200, { stateInstance: "authorized" });
  };
}

const tooMany = (retryAfter?: string) => (res: ServerResponse) => {
  res.writeHead(429, { "content-type": "application/json", ...(retryAfter !== undefined && { "retry-after": retryAfter }) });
  res.end('{"message":"Too Many Requests"}');
};

/** A REST client as one daemon builds it: paced through Redis under `prefix`. */
function daemonClient(idInstance: string, pace: { instanceIntervalMs?: number; hostRps?: number } = {}, opts: Partial<GreenApiClientOptions> = {}) {
  const limiter = providerPace(
    { redis, prefix, log, instanceIntervalMs: pace.instanceIntervalMs ?? 0, hostRps: pace.hostRps ?? 0 },
    provider.apiUrl,
    idInstance,
  );
  return createGreenApiClient({ apiUrl: provider.apiUrl, idInstance, token: TOKEN }, { timeoutMs: 2000, limiter, ...opts });
}

const gaps = (list: Array<{ at: number }>) => list.slice(1).map((a, i) => a.at - list[i]!.at);

describe("Retry-After as sent by a provider or a receiver", () => {
  const now = new Date("2026-12-02T06:00:00Z");

  it("reads delay-seconds and HTTP dates, bounded by the maximum", () => {
    expect(retryAfterMs("3", now, 60_000)).toBe(3000);
    expect(retryAfterMs(" 0 ", now, 60_000)).toBe(0);
    expect(retryAfterMs("86400", now, 60_000)).toBe(60_000);
    expect(retryAfterMs("Wed, 02 Dec 2026 06:00:05 GMT", now, 60_000)).toBe(5000);
    expect(retryAfterMs("Wednesday, 02-Dec-26 06:00:07 GMT", now, 60_000)).toBe(7000);
    expect(retryAfterMs("Tue, 01 Dec 2026 06:00:00 GMT", now, 60_000)).toBe(0);
    expect(retryAfterMs(["2", "9"], now, 60_000)).toBe(2000);
  });

  it("ignores what is not a Retry-After", () => {
    for (const garbage of [undefined, "", "soon", "-5", "1.5", "1e3", "0x10", "Wed, 32 Foo 2026 99:00:00 GMT", "9".repeat(80), "12345678901"]) {
      expect(retryAfterMs(garbage, now, 60_000)).toBeNull();
    }
  });
});

describe("a provider that answers 429", () => {
  it("waits as long as Retry-After says, then the call succeeds: not earlier", async () => {
    scriptProvider(tooMany("1"));
    const client = daemonClient(newIdInstance());
    expect(await client.getStateInstance()).toEqual({ state: "authorized", raw: "authorized" });
    expect(arrivals).toHaveLength(2);
    expect(arrivals[1]!.at - arrivals[0]!.at).toBeGreaterThanOrEqual(1000);
  });

  it("makes another daemon's call to the same instance wait out the same Retry-After", async () => {
    const idInstance = newIdInstance();
    scriptProvider(tooMany("1"));
    const first = daemonClient(idInstance, { instanceIntervalMs: 1 }).getStateInstance();
    // The first daemon has been told to wait, and has told Redis so.
    const slot = `${prefix}:pace:instance:${new URL(provider.apiUrl).host}:${idInstance}:getStateInstance`;
    await waitFor("the hold-off in Redis", async () => Number(await redis.get(slot)) > Date.now() + 500, 5000, 5);
    const second = daemonClient(idInstance, { instanceIntervalMs: 1 }).getStateInstance();
    await Promise.all([first, second]);
    expect(arrivals).toHaveLength(3);
    expect(Math.min(arrivals[1]!.at, arrivals[2]!.at) - arrivals[0]!.at).toBeGreaterThanOrEqual(1000);
  });

  it("falls back to a short wait when Retry-After is garbage, and bounds a huge one", async () => {
    scriptProvider(tooMany("soon"), tooMany("-1"), tooMany("99999999"));
    const client = daemonClient(newIdInstance(), {}, { retryAfterMaxMs: 150, rateLimitRetries: 3 });
    expect(await client.getStateInstance()).toMatchObject({ state: "authorized" });
    // Garbage waits the fallback (bounded here to 150 ms), the huge value is cut to 150 ms: nothing immediate.
    expect(gaps(arrivals).every((g) => g >= 150 && g < 2000)).toBe(true);
  });

  it("gives up after its retries with a transient rate-limit error that names no token", async () => {
    scriptProvider(tooMany("0"), tooMany("0"), tooMany("0"));
    const client = daemonClient(newIdInstance(), {}, { rateLimitRetries: 2 });
    const err = await client.getStateInstance().then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(ProviderRateLimitedError);
    expect(err).toMatchObject({ code: "provider_rate_limited", transient: true, status: 429 });
    expect(String((err as Error).message)).not.toContain(TOKEN);
    expect(arrivals).toHaveLength(3);
  });
});

describe("the provider's rate limits, shared by daemons through Redis", () => {
  it("spaces calls of one method to one instance by the interval, whichever daemon makes them", async () => {
    scriptProvider();
    const idInstance = newIdInstance();
    const daemons = [daemonClient(idInstance, { instanceIntervalMs: 250 }), daemonClient(idInstance, { instanceIntervalMs: 250 })];
    await Promise.all([0, 1, 2, 3].map((i) => daemons[i % 2]!.getStateInstance()));
    expect(arrivals).toHaveLength(4);
    // Redis's clock sets the slots, the provider's stamps arrivals: a few ms of slack between the two.
    for (const gap of gaps(arrivals.sort((a, b) => a.at - b.at))) expect(gap).toBeGreaterThanOrEqual(240);
  });

  it("does not hold one instance's calls behind another's, nor one method behind another", async () => {
    scriptProvider();
    const a = daemonClient(newIdInstance(), { instanceIntervalMs: 60_000 });
    const b = daemonClient(newIdInstance(), { instanceIntervalMs: 60_000 });
    await a.getStateInstance();
    // Both would wait a minute if the limit leaked across instances or methods; the test's timeout says no.
    await Promise.all([b.getStateInstance(), a.logout()]);
    expect(arrivals).toHaveLength(3);
  });

  it("lets the calls of a sweep share one signal without piling listeners on it", async () => {
    scriptProvider();
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.name);
    process.on("warning", onWarning);
    try {
      const sweep = new AbortController();
      const clients = Array.from({ length: 15 }, () => daemonClient(newIdInstance(), { hostRps: 200 }));
      await Promise.all(clients.map((c) => c.getStateInstance(sweep.signal)));
      await new Promise((r) => setImmediate(r));
    } finally {
      process.off("warning", onWarning);
    }
    expect(arrivals).toHaveLength(15);
    expect(warnings).not.toContain("MaxListenersExceededWarning");
  });

  it("keeps every instance on one host under its requests per second", async () => {
    scriptProvider();
    const clients = [0, 1, 2, 3, 4].map(() => daemonClient(newIdInstance(), { hostRps: 10 }));
    await Promise.all(clients.map((c) => c.getStateInstance()));
    expect(arrivals).toHaveLength(5);
    for (const gap of gaps(arrivals.sort((a, b) => a.at - b.at))) expect(gap).toBeGreaterThanOrEqual(90);
  });
});
