import { randomBytes, randomInt } from "node:crypto";
import { loadConfig, type Config } from "../../src/config.js";
import { createLogger } from "../../src/log.js";
import { openFleet } from "../../src/wiring/runtime.js";
import { startDaemon, type Daemon } from "../../workers/daemon.js";
import type { FleetContext } from "../../src/fleet/context.js";
import { addInstance, type InstanceView } from "../../src/fleet/instances/instances.js";
import type { RedisClient } from "../../src/queues.js";
import type { Script, Simulator } from "../../src/simulator/index.js";

/** Settings that make a fleet run in seconds: short scan windows, short backoff, fast stall detection. */
export const FAST: Record<string, string> = {
  PORT: "0",
  LOG_LEVEL: process.env.LOG_LEVEL ?? "silent",
  QRFLEET_SESSION_ATTEMPTS: "3",
  QRFLEET_BACKOFF_BASE_MS: "200",
  QRFLEET_BACKOFF_MAX_MS: "800",
  QRFLEET_SILENCE_MS: "5000",
  // Simulated rotations in tests are 50 ms and up.
  QRFLEET_QR_MIN_INTERVAL_MS: "20",
  QRFLEET_ATTEMPT_MAX_MS: "10000",
  QRFLEET_HTTP_TIMEOUT_MS: "3000",
  // Simulated REST polling runs faster than the provider's one call a second (test/greenapi/rest-pace.test.ts sets it).
  QRFLEET_PROVIDER_CALL_INTERVAL_MS: "0",
  // No periodic sweep: only the one at start, so nothing polls a test's instances behind its back.
  QRFLEET_SWEEP_INTERVAL_MS: "0",
  QRFLEET_RECONCILE_INTERVAL_MS: "3600000",
  QRFLEET_SHUTDOWN_GRACE_MS: "500",
  QRFLEET_LOCK_DURATION_MS: "4000",
  QRFLEET_STALLED_INTERVAL_MS: "1000",
  // The simulator and the tests' receivers listen on loopback.
  QRFLEET_ALLOW_PRIVATE_PROVIDER: "true",
  QRFLEET_ALLOW_PRIVATE_WEBHOOKS: "true",
};

export const newPrefix = () => `qrft_${randomBytes(5).toString("hex")}`;
export const newIdInstance = () => String(randomInt(1_000_000_000, 9_999_999_999));
export const newToken = () => randomBytes(25).toString("hex");

export function testConfig(env: Record<string, string> = {}): Config {
  return loadConfig({ ...process.env, ...FAST, ...env });
}

/**
 * A daemon sweeps the fleet when it starts. The daemon is handed over once that sweep is done, so
 * instances a test adds next are not swept (and linked by a sweep session) behind its back.
 */
export async function startTestDaemon(env: Record<string, string>): Promise<Daemon> {
  const config = testConfig(env);
  const daemon = await startDaemon(config, createLogger({ level: config.LOG_LEVEL }));
  await waitFor("the start-up sweep to finish", async () => {
    const counts = await daemon.ctx.queues.sweep.getJobCounts("waiting", "active", "prioritized");
    return Object.values(counts).every((n) => n === 0);
  }, 30_000, 50);
  return daemon;
}

export function testFleet(env: Record<string, string>) {
  const config = testConfig(env);
  return openFleet(config, createLogger({ level: config.LOG_LEVEL }));
}

/** Polls `check` until it returns a truthy value or the deadline passes (then throws `what`). */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined | null | false>, timeoutMs = 20_000, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Defines an instance on the simulator with `script` and adds it to the fleet. */
export async function simulatedInstance(
  ctx: FleetContext,
  sim: Simulator,
  script: Partial<Script>,
  extra: Record<string, unknown> = {},
): Promise<InstanceView & { token: string }> {
  const idInstance = newIdInstance();
  const token = newToken();
  sim.define({ idInstance, token, ...script });
  return { ...(await addInstance(ctx, { apiUrl: sim.url, idInstance, token, ...extra })), token };
}

/** Deletes every key under `prefix`, as a Redis that lost its data would have none: the number deleted. */
export async function deleteRedisKeys(redis: RedisClient, prefix: string): Promise<number> {
  let deleted = 0;
  let cursor = "0";
  do {
    const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}:*`, "COUNT", 1000);
    cursor = next;
    if (keys.length) deleted += await redis.del(...keys);
  } while (cursor !== "0");
  return deleted;
}
