import { afterAll, beforeAll } from "vitest";
import { startOwnPostgres, type OwnPostgres } from "../../bench/chaos/own-postgres.js";
import { startOwnRedis, type OwnRedis } from "../../bench/chaos/own-redis.js";

/**
 * The file's own PostgreSQL cluster and redis-server, started before its tests and ended after
 * them whatever happened: the faults restart and flush these, never the machine's shared ones.
 */
export function ownServices(): { readonly pg: OwnPostgres; readonly redis: OwnRedis } {
  const services = {} as { pg: OwnPostgres; redis: OwnRedis };
  beforeAll(async () => {
    [services.pg, services.redis] = await Promise.all([startOwnPostgres(), startOwnRedis()]);
  }, 60_000);
  afterAll(async () => {
    await Promise.allSettled([services.redis?.stop(), services.pg?.destroy()]);
  }, 60_000);
  return services;
}
