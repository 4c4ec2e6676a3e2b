import { describe, expect, it } from "vitest";
import type { PhaseReport } from "../../bench/phase-report.js";
import { runBench, successfulRun } from "./built.js";

/**
 * The whole bench, end to end, with tiny numbers: both phases must deliver every QR exactly once
 * with valid signatures, and report their CPU and memory. Figures of speed are the bench's
 * output, never a test's assertion.
 */
describe("npm run bench", () => {
  it(
    "runs the bare client and the daemon, and prints one JSON line with both",
    async () => {
      const exit = await runBench(
        // A 400 ms rotation is faster than the daemon's default QR pace (500 ms): pace it below the rotation. Digests come
        // every few seconds, so the fleet-wide email operator gets one in the 8 s phase.
        [
          "--sessions", "8", "--rotate-ms", "400", "--window-ms", "60000", "--seconds", "8", "--floor", "--env", "QRFLEET_SHUTDOWN_GRACE_MS=500",
          "--env", "QRFLEET_QR_MIN_INTERVAL_MS=100", "--env", "QRFLEET_DIGEST_WINDOW_MS=2000", "--env", "QRFLEET_DIGEST_INTERVAL_MS=3000",
        ],
        90_000,
      );
      const result = successfulRun<{ daemon: PhaseReport; floor: PhaseReport; ratios: Record<string, number | null> }>(exit);
      expect(result).toMatchObject({ sessions: 8, rotateMs: 400, windowMs: 60_000, seconds: 8, daemons: 1, start: "sweep" });
      for (const [name, phase] of [["floor", result.floor], ["daemon", result.daemon]] as const) {
        expect({ name, delivered: phase.delivered > 0 }).toEqual({ name, delivered: true });
        expect({ name, lost: phase.lost, duplicated: phase.duplicated, invalidSignatures: phase.invalidSignatures }).toEqual({
          name, lost: 0, duplicated: 0, invalidSignatures: 0,
        });
        expect(phase.sent).toBe(phase.delivered + phase.superseded);
        expect(phase.cpuMs.daemon).toEqual(expect.any(Number));
        expect(phase.cpuMsPerQr.daemon).toEqual(expect.any(Number));
        expect(phase.servicePerQr.postgresTransactions).toEqual(expect.any(Number));
        expect(phase.servicePerQr.redisCommands).toEqual(expect.any(Number));
        expect(phase.peakRssMb).toBeGreaterThan(0);
        expect(phase.emails).toBeGreaterThan(0);
        expect(phase.socketsOpenMax).toBe(8);
      }
      expect(result.ratios.cpuPerQr).toEqual(expect.any(Number));
      expect(result.ratios.peakRss).toEqual(expect.any(Number));
      expect(exit.stderr).toMatch(/\[daemon\] t=\s*\d+s sockets=\s*\d+ qr\/s=/);
    },
    120_000,
  );
});
