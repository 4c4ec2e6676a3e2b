import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import { expect } from "vitest";
import { PROJECT_ROOT } from "../../src/paths.js";

/** The bench as users run it: the built dist/bench/run.js (the suite runs after `npm run build`). */
export const RUN_JS = path.join(PROJECT_ROOT, "dist", "bench", "run.js");

export interface BenchExit {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function runBench(args: string[], timeoutMs: number): Promise<BenchExit> {
  if (!existsSync(RUN_JS)) throw new Error(`${RUN_JS} is missing: run npm run build before these tests`);
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [RUN_JS, ...args], { cwd: PROJECT_ROOT, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    // SIGINT, as Ctrl-C would: the bench then cleans up what it made before it exits.
    const timer = setTimeout(() => child.kill("SIGINT"), timeoutMs);
    child.on("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** A run that succeeded: exactly one JSON line on stdout, no `error` in it, exit code 0 (stderr explains any failure). */
export function successfulRun<T>({ code, stdout, stderr }: BenchExit): T {
  const lines = stdout.trim().split("\n");
  expect(lines, stderr).toHaveLength(1);
  const result = JSON.parse(lines[0]!) as T & { error?: string };
  expect(result.error, stderr).toBeUndefined();
  expect(code, stderr).toBe(0);
  return result;
}
