import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import path from "node:path";
import { Redis } from "ioredis";
import { afterAll } from "vitest";
import { nodeArgsFor } from "../support/entry.js";

const ROOT = path.resolve(import.meta.dirname, "../..");

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface CliRunner {
  /** `input` is written to the command's standard input. */
  (args: string[], env?: Record<string, string>, input?: string): Promise<CliResult>;
  /** Runs and parses stdout as one JSON document; fails the test with stderr when it is not. */
  json<T = unknown>(args: string[]): Promise<T>;
  /** Starts the command and returns it while it runs (for signals). */
  start(args: string[]): { result: Promise<CliResult>; output: () => string; signal: (s: NodeJS.Signals) => void };
  /** The Redis key prefix the commands run with. */
  prefix: string;
}

/** Deletes what the commands of one test file left in Redis under its prefix. */
async function dropPrefix(prefix: string): Promise<void> {
  const redis = new Redis(process.env.REDIS_URL ?? "redis://127.0.0.1:6379");
  try {
    for (let cursor = "0"; ; ) {
      const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}:*`, "COUNT", 500);
      if (keys.length > 0) await redis.del(...keys);
      if (next === "0") break;
      cursor = next;
    }
  } finally {
    redis.disconnect();
  }
}

/** `qrfleet` as a real child process (its build when fresh, else tsx), with this file's own Redis prefix. */
export function cliRunner(): CliRunner {
  const prefix = `qrft_cli_${randomBytes(4).toString("hex")}`;
  afterAll(() => dropPrefix(prefix));
  const start = (args: string[], env: Record<string, string> = {}, input?: string) => {
    const child = spawn(process.execPath, [...nodeArgsFor("src/cli.ts"), ...args], {
      cwd: ROOT,
      // The simulator and the receivers listen on loopback.
      env: { ...process.env, QRFLEET_REDIS_PREFIX: prefix, QRFLEET_ALLOW_PRIVATE_PROVIDER: "true", QRFLEET_ALLOW_PRIVATE_WEBHOOKS: "true", ...env },
      stdio: [input === undefined ? "ignore" : "pipe", "pipe", "pipe"],
    });
    if (input !== undefined) child.stdin!.end(input);
    let stdout = "";
    let stderr = "";
    child.stdout!.on("data", (c: Buffer) => (stdout += c.toString()));
    child.stderr!.on("data", (c: Buffer) => (stderr += c.toString()));
    const result = new Promise<CliResult>((resolve) => child.on("close", (code) => resolve({ code, stdout, stderr })));
    return { result, output: () => stdout + stderr, signal: (s: NodeJS.Signals) => void child.kill(s) };
  };
  const run = ((args: string[], env?: Record<string, string>, input?: string) => start(args, env, input).result) as CliRunner;
  run.start = (args) => start(args);
  run.prefix = prefix;
  run.json = async <T>(args: string[]) => {
    const r = await run([...args, "--json"]);
    if (r.code !== 0) throw new Error(`qrfleet ${args.join(" ")} exited ${r.code}: ${r.stderr}`);
    return JSON.parse(r.stdout) as T;
  };
  return run;
}

/** The QR blocks `qrfleet scan` printed: the text between each "QR n —" title and the next line of words. */
export function drawnQrs(stdout: string): string[] {
  const blocks: string[] = [];
  let current: string[] | undefined;
  for (const line of stdout.split("\n")) {
    if (/^QR \d+ — received/.test(line)) {
      current = [];
      blocks.push("");
      continue;
    }
    if (!current) continue;
    if (/[A-Za-z]{3}/.test(line.replace(/\x1b\[\d+m/g, ""))) {
      current = undefined;
      continue;
    }
    current.push(line);
    blocks[blocks.length - 1] = current.join("\n");
  }
  return blocks;
}

export const noStack = (text: string) => !/\n\s+at .+:\d+:\d+/.test(text);
