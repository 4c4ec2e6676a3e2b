import { randomBytes } from "node:crypto";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import path from "node:path";

/**
 * The demo needs no configuration from a newcomer: this builds the environment it hands to
 * loadConfig. DATABASE_URL, REDIS_URL, the two secrets, PORT and LOG_LEVEL from the caller's
 * environment win; the timings are the demo's own so the story plays out in about two minutes.
 */

export const DEMO_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/qrfleet_demo";
export const DEMO_REDIS_PREFIX = "qrfleet_demo";
const PREFERRED_PORT = 8080;

interface DemoSecrets {
  secretKey: string;
  adminToken: string;
}

/**
 * Generated once and kept in .demo/secrets.json: the key seals the instance tokens stored in the
 * demo database, so a second run (or the CLI afterwards) must use the same one to read them.
 */
async function demoSecrets(dir: string): Promise<DemoSecrets> {
  const file = path.join(dir, "secrets.json");
  const stored = await readFile(file, "utf8")
    .then((text) => JSON.parse(text) as Partial<DemoSecrets>)
    .catch(() => ({}) as Partial<DemoSecrets>);
  if (typeof stored.secretKey === "string" && typeof stored.adminToken === "string") {
    return { secretKey: stored.secretKey, adminToken: stored.adminToken };
  }
  const fresh = { secretKey: randomBytes(32).toString("base64"), adminToken: randomBytes(24).toString("hex") };
  await writeFile(file, JSON.stringify(fresh, null, 2) + "\n", { mode: 0o600 });
  return fresh;
}

/** 8080 when it is free, else whatever port the system hands out. */
async function freePort(preferred: number): Promise<number> {
  const tryListen = (port: number) =>
    new Promise<number | null>((resolve) => {
      const probe = createServer();
      probe.once("error", () => resolve(null));
      probe.listen({ port, host: "127.0.0.1", exclusive: true }, () => {
        const got = (probe.address() as { port: number }).port;
        probe.close(() => resolve(got));
      });
    });
  return (await tryListen(preferred)) ?? (await tryListen(0)) ?? preferred;
}

export interface DemoEnvironment {
  env: Record<string, string>;
  /** Port 8080 was taken and another was picked. */
  portMoved: boolean;
}

export async function demoEnvironment(
  outer: NodeJS.ProcessEnv,
  dir: string,
  peers: { databaseUrl: string; redisUrl: string; smtpUrl: string },
): Promise<DemoEnvironment> {
  await mkdir(dir, { recursive: true });
  const secrets = await demoSecrets(dir);
  const wanted = outer.PORT ? Number(outer.PORT) : PREFERRED_PORT;
  const port = await freePort(wanted);
  const base = `http://127.0.0.1:${port}`;
  const env: Record<string, string> = {
    DATABASE_URL: peers.databaseUrl,
    REDIS_URL: peers.redisUrl,
    QRFLEET_REDIS_PREFIX: DEMO_REDIS_PREFIX,
    QRFLEET_SECRET_KEY: outer.QRFLEET_SECRET_KEY || secrets.secretKey,
    QRFLEET_ADMIN_TOKEN: outer.QRFLEET_ADMIN_TOKEN || secrets.adminToken,
    SMTP_URL: peers.smtpUrl,
    SMTP_FROM: "qrfleet demo <qrfleet@localhost>",
    PORT: String(port),
    HOST: "127.0.0.1",
    QRFLEET_PUBLIC_URL: base,
    // The demo's simulated provider and its webhook receiver listen on this machine.
    QRFLEET_ALLOW_PRIVATE_PROVIDER: "true",
    QRFLEET_ALLOW_PRIVATE_WEBHOOKS: "true",
    LOG_LEVEL: outer.LOG_LEVEL || "info",
    QRFLEET_SESSION_ATTEMPTS: "3",
    QRFLEET_BACKOFF_BASE_MS: "5000",
    QRFLEET_BACKOFF_MAX_MS: "20000",
    // The simulator rotates every 5 s in a 30 s window: a silent socket or an overlong attempt
    // shows up within seconds rather than the provider-sized 45 s / 130 s.
    QRFLEET_SCAN_WINDOW_MS: "30000",
    QRFLEET_SILENCE_MS: "15000",
    QRFLEET_ATTEMPT_MAX_MS: "45000",
    // A sweep would restart the timed-out instance and blur the story of its three attempts.
    QRFLEET_SWEEP_INTERVAL_MS: "600000",
    // Ctrl-C should end the demo in a few seconds, not wait out a scan window.
    QRFLEET_SHUTDOWN_GRACE_MS: "1000",
    QRFLEET_DB_POOL: "10",
    QRFLEET_CONCURRENCY: "50",
    // The storm of 30 branches: an incident above 10 logouts, a digest a minute after a 20 s window.
    QRFLEET_STORM_MIN_LOGOUTS: "10",
    QRFLEET_STORM_WINDOW_MS: "120000",
    QRFLEET_DIGEST_WINDOW_MS: "20000",
    QRFLEET_DIGEST_INTERVAL_MS: "60000",
  };
  return { env, portMoved: port !== wanted };
}

/** What `qrfleet` commands need to look at the demo's fleet, as KEY=value lines for `env $(cat …)`. */
export async function writeCliEnv(file: string, env: Record<string, string>): Promise<void> {
  const keys = ["DATABASE_URL", "REDIS_URL", "QRFLEET_REDIS_PREFIX", "QRFLEET_SECRET_KEY"];
  await writeFile(file, keys.map((k) => `${k}=${env[k] ?? ""}`).join("\n") + "\n", { mode: 0o600 });
}
