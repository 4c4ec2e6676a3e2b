import { spawn, type ChildProcess } from "node:child_process";
import path from "node:path";
import { nodeArgsFor } from "./entry.js";
import { FAST } from "./fleet.js";

const ROOT = path.resolve(import.meta.dirname, "../..");

export interface Spawned {
  child: ChildProcess;
  lines: string[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  waitForLine(pattern: RegExp, timeoutMs?: number): Promise<string>;
}

/** Runs a TypeScript entry of this repo as a real child process (its build when that is fresh). */
export function spawnTs(entry: string, args: string[], env: Record<string, string>): Spawned {
  const child = spawn(process.execPath, [...nodeArgsFor(entry), ...args], {
    cwd: ROOT,
    env: { ...process.env, ...FAST, LOG_LEVEL: "info", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const lines: string[] = [];
  const waiters: Array<() => void> = [];
  const onData = (chunk: Buffer) => {
    lines.push(...chunk.toString().split("\n").filter(Boolean));
    waiters.forEach((w) => w());
  };
  child.stdout!.on("data", onData);
  child.stderr!.on("data", onData);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on("exit", (code, signal) => resolve({ code, signal })),
  );
  const waitForLine = (pattern: RegExp, timeoutMs = 30_000) =>
    new Promise<string>((resolve, reject) => {
      const check = () => {
        const hit = lines.find((l) => pattern.test(l));
        if (hit) {
          clearTimeout(timer);
          resolve(hit);
        }
      };
      const timer = setTimeout(() => reject(new Error(`no line matching ${pattern} within ${timeoutMs} ms:\n${lines.slice(-20).join("\n")}`)), timeoutMs);
      waiters.push(check);
      check();
    });
  return { child, lines, exited, waitForLine };
}

export const spawnDaemon = (env: Record<string, string>) => spawnTs("workers/main.ts", [], env);

/** SIGKILLs a spawned process that has not exited yet (a test's teardown after a failure). */
export function killIfAlive(s: Spawned | undefined): void {
  if (s && s.child.exitCode === null && s.child.signalCode === null) s.child.kill("SIGKILL");
}
