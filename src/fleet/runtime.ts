import type { Config } from "../config.js";
import { openDatabase } from "../db.js";
import type { Logger } from "../log.js";
import { registerSecret } from "../log.js";
import { createQueues, redisTarget } from "../queues.js";
import { SecretBox } from "../secrets.js";
import type { FleetContext } from "./context.js";
import { FleetEvents } from "./events.js";

/** A FleetContext for a short-lived face (a CLI command, a test): no workers, closed after use. */
export function openFleet(config: Config, log: Logger): FleetContext & { close(): Promise<void> } {
  registerSecret(config.QRFLEET_ADMIN_TOKEN);
  for (const key of [config.QRFLEET_SECRET_KEY, ...config.QRFLEET_SECRET_KEYS_PREVIOUS]) registerSecret(key);
  const { db, sql } = openDatabase(config.DATABASE_URL, Math.min(config.QRFLEET_DB_POOL, 5), (err) =>
    log.warn({ err }, "a PostgreSQL connection failed"),
  );
  const queues = createQueues(redisTarget(config));
  return {
    db,
    sql,
    box: new SecretBox(config.QRFLEET_SECRET_KEY, config.QRFLEET_SECRET_KEYS_PREVIOUS),
    queues,
    config,
    log,
    events: new FleetEvents(),
    async close() {
      await queues.close();
      await db.$disconnect();
    },
  };
}
