import { pino } from "pino";
import { loadConfig, type Config, type RequiredKey } from "../config.js";
import type { FleetContext } from "../fleet/context.js";
import { openFleet } from "../wiring/runtime.js";
import { createLogger, type Logger } from "../log.js";
import { within } from "../lib/deadline.js";

/**
 * A one-shot command logs to stderr so stdout holds only its result (and stays parseable with
 * --json); at warn unless LOG_LEVEL asks for something other than the daemon's default, info.
 */
export function cliLogger(config: Config): Logger {
  const level = config.LOG_LEVEL === "info" ? "warn" : config.LOG_LEVEL;
  return createLogger({ level, name: "qrfleet-cli", destination: pino.destination({ dest: 2, sync: true }) });
}

/** The configuration a command needs; the fleet seals tokens, so it needs the secret key. */
export function cliConfig(required: readonly RequiredKey[]): Config {
  return loadConfig(undefined, required);
}

/** Runs `fn` with a signal that SIGINT or SIGTERM aborts: a long command stops between two batches, keeping what is done. */
export async function untilStopped<T>(fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  process.once("SIGINT", onSignal).once("SIGTERM", onSignal);
  try {
    return await fn(stop.signal);
  } finally {
    process.off("SIGINT", onSignal).off("SIGTERM", onSignal);
  }
}

/**
 * A queue call waits for Redis to come back rather than fail, and PostgreSQL may hang on a
 * network fault; a command tells the user what it waits for, and gives up after a bound.
 */
const HINT_AFTER_MS = 10_000;
const DEFAULT_BOUND_MS = 120_000;
const CLOSE_BOUND_MS = 5_000;

export class WaitBoundError extends Error {
  override name = "WaitBoundError";
}

async function waitingFor<T>(work: Promise<T>, boundMs: number, what: string): Promise<T> {
  const hint = setTimeout(() => process.stderr.write(`qrfleet: still waiting for ${what}…\n`), Math.min(HINT_AFTER_MS, boundMs));
  try {
    return await within(work, boundMs, () => new WaitBoundError(`gave up after ${Math.round(boundMs / 1000)} s waiting for ${what}`));
  } finally {
    clearTimeout(hint);
  }
}

/** Opens the fleet, runs `fn`, and closes it again so the process can end promptly. */
export async function withFleet<T>(
  fn: (ctx: FleetContext) => Promise<T>,
  opts: { boundMs?: number; waitingFor?: string } = {},
): Promise<T> {
  const config = cliConfig(["QRFLEET_SECRET_KEY"]);
  const fleet = openFleet(config, cliLogger(config));
  const what = opts.waitingFor ?? "PostgreSQL (DATABASE_URL) and Redis (REDIS_URL)";
  try {
    return await waitingFor(fn(fleet), opts.boundMs ?? DEFAULT_BOUND_MS, what);
  } finally {
    await waitingFor(fleet.close(), CLOSE_BOUND_MS, "the connections to close").catch((err: unknown) =>
      fleet.log.warn({ err }, "closing the fleet connections failed"),
    );
  }
}
