import type { Config } from "../config.js";
import { openDatabase } from "../db.js";
import type { Logger } from "../log.js";
import { registerSecret } from "../log.js";
import { createQueues, redisTarget } from "../queues.js";
import { SecretBox } from "../secrets.js";
import type { FleetContext } from "../fleet/context.js";
import { FleetEvents } from "../fleet/events.js";

export interface OpenFleetOptions {
  /** PostgreSQL connections. Default: QRFLEET_DB_POOL, at most 5 (a short-lived face) */
  dbPool?: number;
}

/**
 * The FleetContext every face runs on, the daemon's (workers/daemon.ts) and a short-lived one's (a
 * CLI command, a test) alike; `close` ends its connections.
 */
export function openFleet(config: Config, log: Logger, options: OpenFleetOptions = {}): FleetContext & { close(): Promise<void> } {
  const secrets = [config.QRFLEET_ADMIN_TOKEN, config.QRFLEET_SECRET_KEY, ...config.QRFLEET_SECRET_KEYS_PREVIOUS, config.QRFLEET_METRICS_TOKEN];
  for (const secret of secrets) registerSecret(secret);
  const dbPool = options.dbPool ?? Math.min(config.QRFLEET_DB_POOL, 5);
  const { db, sql } = openDatabase(config.DATABASE_URL, dbPool, (err) => log.warn({ err }, "a PostgreSQL connection failed"));
  const queues = createQueues(redisTarget(config));
  return {
    db,
    sql,
    box: new SecretBox(config.QRFLEET_SECRET_KEY, config.QRFLEET_SECRET_KEYS_PREVIOUS),
    queues,
    config,
    log,
    events: new FleetEvents((event, err) => log.error({ err, event }, "a listener of a fleet event failed")),
    async close() {
      await queues.close();
      await db.$disconnect();
    },
  };
}
