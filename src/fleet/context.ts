import type { Config } from "../config.js";
import type { Db, Sql } from "../db.js";
import type { Logger } from "../log.js";
import type { OutboundHooks } from "../outbound-guard.js";
import type { Queues } from "../queues.js";
import type { SecretBox } from "../secrets.js";
import type { FleetEvents } from "./events.js";

/** What every fleet function is handed: the CLI, the HTTP API and the workers build one each. */
export interface FleetContext {
  db: Db;
  /** The pool under `db`, for the statements of the hot path. */
  sql: Sql;
  box: SecretBox;
  queues: Queues;
  config: Config;
  log: Logger;
  events: FleetEvents;
  /** Stand-ins for the resolver and the connect of every outbound connection (tests); the system's when absent. */
  outbound?: OutboundHooks;
}
