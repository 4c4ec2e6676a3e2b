/**
 * The clock of a fault run: the provider's rotation and scan window, and the daemon's settings
 * that decide how fast it notices and recovers (stalled jobs, reconciler, leases), set low so a
 * scenario takes seconds. The test suite uses FAST_TIMINGS; `npm run chaos` may stretch them.
 */
export interface Timings {
  /** The simulator's QR rotation, ms. */
  rotationMs: number;
  /** The scan window of a socket (simulator and daemon), ms. */
  windowMs: number;
  /** Attempts of one session. */
  attempts: number;
  /** QRFLEET_DELIVERY_RETRY_MULTIPLIER: scales the outcome retries (5 s, 5 min, …) to the run's length. */
  retryMultiplier: number;
  /** QRFLEET_WEBHOOK_TIMEOUT_MS: how long a receiver may take to answer, ms. Default: 1000 */
  webhookTimeoutMs?: number;
}

export const FAST_TIMINGS: Timings = { rotationMs: 1_000, windowMs: 5_000, attempts: 2, retryMultiplier: 1 };

export function timingsEnv(t: Timings): Record<string, string> {
  return {
    QRFLEET_SCAN_WINDOW_MS: String(t.windowMs),
    QRFLEET_ATTEMPT_MAX_MS: String(t.windowMs + 5_000),
    // Three rotations without a frame: the provider went silent.
    QRFLEET_SILENCE_MS: String(3 * t.rotationMs),
    QRFLEET_SESSION_ATTEMPTS: String(t.attempts),
    QRFLEET_BACKOFF_BASE_MS: "300",
    QRFLEET_BACKOFF_MAX_MS: "1000",
    QRFLEET_HTTP_TIMEOUT_MS: "2000",
    QRFLEET_WEBHOOK_TIMEOUT_MS: String(t.webhookTimeoutMs ?? 1_000),
    // The lease is max(this, webhook timeout + 5 s): a dead sender's deliveries are retaken 6 s on.
    QRFLEET_DELIVERY_LEASE_MS: "1000",
    QRFLEET_DELIVERY_RETRY_MULTIPLIER: String(t.retryMultiplier),
    QRFLEET_LOCK_DURATION_MS: "3000",
    QRFLEET_STALLED_INTERVAL_MS: "1000",
    QRFLEET_RECONCILE_INTERVAL_MS: "2000",
    QRFLEET_SWEEP_INTERVAL_MS: "3600000",
    // The scenarios time their faults from the start-up sweep: it polls the fleet at once.
    QRFLEET_SWEEP_SPREAD_MS: "0",
    QRFLEET_SHUTDOWN_GRACE_MS: "500",
    QRFLEET_DB_POOL: "10",
    // Every scenario is a mass logout. The faults are about each email and webhook on its own, so no
    // fleet incident is raised and no channel turned to digests (those across a kill -9:
    // test/e2e/digest-crash.test.ts; storms: test/e2e/storm-flow.test.ts).
    QRFLEET_STORM_MIN_LOGOUTS: "1000000000",
  };
}
