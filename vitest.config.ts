import { defineConfig } from "vitest/config";

/**
 * Files that load the machine themselves (fault scenarios with their own PostgreSQL and Redis, the
 * bench, hundreds of sessions at once) or time the daemon closely (lock lapses, sweep spacing) run
 * one at a time after the rest; the rest spend most of their time waiting on sockets, timers and
 * child processes, so several run at once.
 */
const ALONE = [
  "test/faults/**/*.test.ts", "test/bench/smoke.test.ts", "test/bench/watch-smoke.test.ts", "test/fuzz/daemon.test.ts",
  "test/fleet/worker-pool.test.ts", "test/fleet/faults.test.ts", "test/fleet/recovery.test.ts", "test/fleet/sweep-pace.test.ts",
  "test/fleet/sweep-slices.test.ts", "test/e2e/storm-flow.test.ts",
  "test/greenapi/rest-pace.test.ts", "test/simulator/freeze.test.ts",
];

export default defineConfig({
  test: {
    globalSetup: ["test/support/global-setup.ts"],
    setupFiles: ["test/support/env.ts"],
    pool: "forks",
    testTimeout: 30_000,
    hookTimeout: 30_000,
    teardownTimeout: 30_000,
    projects: [
      { extends: true, test: { name: "shared", include: ["test/**/*.test.ts"], exclude: ALONE, maxWorkers: 2, sequence: { groupOrder: 0 } } },
      { extends: true, test: { name: "alone", include: ALONE, maxWorkers: 1, sequence: { groupOrder: 1 } } },
    ],
  },
});
