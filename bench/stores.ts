import { Redis } from "ioredis";
import { createDatabase, dropDatabase } from "../scripts/databases.js";

/**
 * The services every run uses, on 127.0.0.1 only, and the scratch space it makes in them: a
 * database per phase and a Redis key prefix, each named qrfleet_bench_<random> so a leftover is
 * recognisable, and each removed at the end.
 */
export const ADMIN_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/postgres";
export const REDIS_URL = "redis://127.0.0.1:6379";
export const PG_TARGET = { host: "127.0.0.1", port: 5432 };

export async function createScratchDatabase(name: string): Promise<string> {
  return createDatabase(ADMIN_DATABASE_URL, name);
}

export async function dropScratchDatabase(name: string): Promise<void> {
  await dropDatabase(ADMIN_DATABASE_URL, name);
}

/** The same database reached through the delaying proxy on `proxyPort`. */
export function throughProxy(databaseUrl: string, proxyPort: number | null): string {
  if (proxyPort === null) return databaseUrl;
  const url = new URL(databaseUrl);
  url.port = String(proxyPort);
  return url.toString();
}

/**
 * Deletes every key under `prefix:` with SCAN and UNLINK, never FLUSHDB: the Redis is shared
 * with whatever else runs on the machine.
 */
export async function deleteRedisPrefix(prefix: string): Promise<number> {
  if (!/^qrfleet_bench_[0-9a-f]+$/.test(prefix)) throw new Error(`refusing to delete keys of a prefix the bench did not make: ${prefix}`);
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 3, connectTimeout: 5_000 });
  let deleted = 0;
  try {
    let cursor = "0";
    do {
      const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}:*`, "COUNT", 1000);
      cursor = next;
      if (keys.length > 0) deleted += await redis.unlink(...keys);
    } while (cursor !== "0");
  } finally {
    redis.disconnect();
  }
  return deleted;
}
