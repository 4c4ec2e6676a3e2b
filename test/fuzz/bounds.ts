import { monitorEventLoopDelay } from "node:perf_hooks";
import { expect } from "vitest";

/**
 * A leak and stall detector for a fuzz run, measured in the test's own process: the event loop's
 * longest delay, and memory growth (heap used after a GC when the process runs with --expose-gc,
 * else RSS). The bounds each test states are generous on purpose: a run on a busy shared machine
 * must pass, a frame that blocks the loop for seconds or a per-frame leak must not.
 */

export interface Watch {
  /** Stops measuring; what it saw. */
  stop(): Promise<Measured>;
}

export interface Measured {
  maxDelayMs: number;
  /** Heap used after GC (with --expose-gc) or RSS, grown since the start, in MB. */
  growthMb: number;
  measuredBy: "heap after gc" | "rss";
  unhandled: unknown[];
}

const gc = (globalThis as { gc?: () => void }).gc;

function memory(): number {
  if (gc) {
    gc();
    return process.memoryUsage().heapUsed;
  }
  return process.memoryUsage().rss;
}

/** Starts measuring; also collects unhandled rejections and uncaught exceptions of the run. */
export function watch(): Watch {
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);
  process.on("unhandledRejection", onUnhandled);
  process.on("uncaughtException", onUnhandled);
  const histogram = monitorEventLoopDelay({ resolution: 10 });
  const before = memory();
  histogram.enable();
  return {
    async stop() {
      // A turn for late rejections to surface before the listeners go.
      await new Promise((r) => setTimeout(r, 20));
      histogram.disable();
      process.off("unhandledRejection", onUnhandled);
      process.off("uncaughtException", onUnhandled);
      const growthMb = (memory() - before) / 2 ** 20;
      return { maxDelayMs: histogram.max / 1e6, growthMb, measuredBy: gc ? "heap after gc" : "rss", unhandled };
    },
  };
}

/** Lets the event loop turn, so the delay histogram sees each run's blocking alone. */
export const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

/** The run left no unhandled rejection, no stall over `maxDelayMs`, no growth over `maxGrowthMb`. */
export function expectBounded(m: Measured, limits: { maxDelayMs: number; maxGrowthMb: number }, context = ""): void {
  expect(m.unhandled, context).toEqual([]);
  expect(m.maxDelayMs, `event loop delay ${context} (${m.measuredBy} grew ${m.growthMb.toFixed(0)} MB)`).toBeLessThan(limits.maxDelayMs);
  expect(m.growthMb, `${m.measuredBy} growth ${context}`).toBeLessThan(limits.maxGrowthMb);
}
