import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../src/config.js";

const KEY = Buffer.alloc(32, 7).toString("base64");
const good = { QRFLEET_SECRET_KEY: KEY, QRFLEET_ADMIN_TOKEN: "0123456789abcdef0" };

describe("configuration", () => {
  it("fills documented defaults", () => {
    const c = loadConfig({ ...good });
    expect(c.PORT).toBe(8080);
    expect(c.QRFLEET_SESSION_ATTEMPTS).toBe(5);
    expect(c.QRFLEET_BACKOFF_BASE_MS).toBe(60_000);
    expect(c.QRFLEET_BACKOFF_MAX_MS).toBe(1_800_000);
    expect(c.QRFLEET_SWEEP_INTERVAL_MS).toBe(60_000);
    expect(Object.isFrozen(c)).toBe(true);
  });

  it("fails at boot with a sentence that says what to set", () => {
    expect(() => loadConfig({})).toThrow(/set QRFLEET_SECRET_KEY to 32 random bytes in base64/);
    expect(() => loadConfig({ QRFLEET_SECRET_KEY: KEY })).toThrow(/set QRFLEET_ADMIN_TOKEN/);
    expect(() => loadConfig({ ...good, QRFLEET_SECRET_KEY: "c2hvcnQ=" })).toThrow(/QRFLEET_SECRET_KEY must be 32 random bytes/);
    expect(() => loadConfig({ ...good, PORT: "http" })).toThrow(ConfigError);
    expect(() => loadConfig({ ...good, DATABASE_URL: "mysql://x" })).toThrow(/DATABASE_URL must be a URL starting with postgresql:/);
    expect(() => loadConfig({ ...good, QRFLEET_CONCURRENCY: "0" })).toThrow(/QRFLEET_CONCURRENCY/);
  });

  it("takes REDIS_URL as a seed node of a Redis Cluster, which has only database 0", () => {
    expect(loadConfig({ ...good }).REDIS_CLUSTER).toBe(false);
    expect(loadConfig({ ...good, REDIS_CLUSTER: "true", REDIS_URL: "rediss://u:p@cfg.example.test:6379/0" }).REDIS_CLUSTER).toBe(true);
    expect(() => loadConfig({ ...good, REDIS_CLUSTER: "true", REDIS_URL: "redis://127.0.0.1:7000/3" })).toThrow(
      /REDIS_URL names database 3, but a Redis Cluster has only database 0: remove \/3 from REDIS_URL/,
    );
    expect(() => loadConfig({ ...good, REDIS_CLUSTER: "maybe" })).toThrow(/REDIS_CLUSTER/);
  });

  it("does not ask commands that need no secrets for them", () => {
    expect(loadConfig({}, []).QRFLEET_SECRET_KEY).toBe("");
  });

  it("never echoes a secret value in its error", () => {
    const secret = "supersecretvalue-not-base64-32";
    try {
      loadConfig({ ...good, QRFLEET_SECRET_KEY: secret });
      expect.unreachable();
    } catch (err) {
      expect(String(err)).not.toContain(secret);
    }
  });

  it("documents every key in .env.example, and nothing else", () => {
    const documented = readFileSync(new URL("../.env.example", import.meta.url), "utf8")
      .split("\n")
      .filter((line) => /^[A-Z_]+=/.test(line))
      .map((line) => line.split("=")[0]);
    expect(documented.sort()).toEqual(Object.keys(loadConfig({ ...good })).sort());
  });
});
