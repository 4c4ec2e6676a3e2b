import { ConfigError, loadConfig } from "../src/config.js";
import { createLogger } from "../src/log.js";
import { startDaemon } from "./daemon.js";

/** The daemon's process entry: start, then stop cleanly on SIGTERM/SIGINT and exit 0. */
export async function runDaemon(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(`qrfleet: ${err.message}`);
      process.exit(2);
    }
    throw err;
  }
  const log = createLogger({ level: config.LOG_LEVEL });
  const daemon = await startDaemon(config, log);
  let signals = 0;
  const stop = (signal: string) => {
    if (++signals > 1) {
      log.warn({ signal }, "second signal: exiting now");
      process.exit(1);
    }
    log.info({ signal }, "signal received");
    daemon.close().then(
      () => log.flush(() => process.exit(0)),
      (err) => {
        log.error({ err }, "shutdown failed");
        log.flush(() => process.exit(1));
      },
    );
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
}

if (import.meta.url === `file://${process.argv[1]}`) {
  runDaemon().catch((err) => {
    console.error(`qrfleet: the daemon could not start: ${(err as Error).message}`);
    process.exit(1);
  });
}
