import { describe, expect, it } from "vitest";
import type { WatchReport } from "../../bench/watch-report.js";
import { runBench, successfulRun } from "./built.js";

/**
 * The steady-state run end to end with tiny numbers: 200 linked instances swept every 3 s, five of
 * them logged out, the bare poller first (two of them, sharing the fleet). Every instance must be polled, every logout must reach
 * the operators as a QR, and both blocks must carry their CPU and memory figures. Speeds are the
 * bench's output, never a test's assertion.
 */
describe("npm run bench -- --watch", () => {
  it(
    "runs the bare poller and the daemon, and prints one JSON line with both",
    async () => {
      const exit = await runBench(
        [
          "--watch", "200", "--provider-latency-ms", "20", "--logouts", "5", "--seconds", "12", "--floor", "--floor-processes", "2",
          "--env", "QRFLEET_SWEEP_INTERVAL_MS=3000", "--env", "QRFLEET_SHUTDOWN_GRACE_MS=500",
        ],
        110_000,
      );
      const result = successfulRun<{ daemon: WatchReport; floor: WatchReport; ratios: Record<string, number | null> }>(exit);
      expect(result).toMatchObject({ watch: 200, providerLatencyMs: 20, sweepIntervalMs: 3000, logouts: 5, seconds: 12, daemons: 1, floorProcesses: 2 });
      for (const [name, phase] of [["floor", result.floor], ["daemon", result.daemon]] as const) {
        expect({ name, unpolled: phase.unpolled, neverPolled: phase.neverPolled }).toEqual({ name, unpolled: 0, neverPolled: 0 });
        expect(phase.polls).toBeGreaterThan(0);
        expect(phase.pollsPerSec).toBeGreaterThan(0);
        expect(phase.uncheckedMs.max).toBeGreaterThan(0);
        expect(phase.cpuMsPerPoll.daemon).toEqual(expect.any(Number));
        expect(phase.peakRssMb).toHaveLength(name === "floor" ? 2 : 1);
        for (const mb of phase.peakRssMb) expect(mb).toBeGreaterThan(0);
      }
      const { logouts, qr, pollShares } = result.daemon;
      expect(logouts).toMatchObject({ planned: 5, done: 5, lost: 0 });
      expect(logouts.toFirstQrMs.max).toEqual(expect.any(Number));
      expect(qr).toMatchObject({ duplicated: 0, invalidSignatures: 0, lost: 0 });
      expect(qr.delivered).toBeGreaterThanOrEqual(5);
      // Null until the daemon exports qrfleet_sweep_polls_total; one daemon then has all of them.
      expect([null, [1]]).toContainEqual(pollShares);
      expect(result.ratios.cpuPerPoll).toEqual(expect.any(Number));
      expect(exit.stderr).toMatch(/\[daemon\] t=\s*\d+s polls\/s=\s*[\d.]+ sockets=/);
    },
    120_000,
  );
});
