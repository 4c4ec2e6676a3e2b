import { execFile } from "node:child_process";
import path from "node:path";
import { PROJECT_ROOT } from "../src/paths.js";

/** The `qrfleet` CLI as a user runs it (`node dist/src/cli.js …`), with the run's environment. */

export const CLI_ENTRY = path.join(PROJECT_ROOT, "dist", "src", "cli.js");

export class CliError extends Error {
  override name = "CliError";
}

/**
 * Runs one command and returns its stdout. A failure says which command, how it ended and the
 * CLI's own one-line message (already free of secrets: the CLI masks them).
 */
export interface CliOptions {
  cwd: string;
  timeoutMs?: number;
  /** Ctrl-C on the bench stops the command too. */
  signal?: AbortSignal;
}

export function qrfleet(args: string[], env: Record<string, string>, opts: CliOptions): Promise<string> {
  const shown = `qrfleet ${args.slice(0, 2).join(" ")}`;
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [CLI_ENTRY, ...args],
      { env, cwd: opts.cwd, timeout: opts.timeoutMs ?? 120_000, maxBuffer: 64 * 1024 * 1024, killSignal: "SIGKILL", signal: opts.signal },
      (err, stdout, stderr) => {
        if (!err) return resolve(stdout);
        const how = err.killed ? `was stopped after ${(opts.timeoutMs ?? 120_000) / 1000} s` : `exited with code ${String(err.code)}`;
        const said = stderr.trim().split("\n").filter(Boolean).slice(-3).join(" | ") || "(nothing on stderr)";
        reject(new CliError(`${shown} ${how}: ${said}`));
      },
    );
  });
}

/** The same, for a command run with --json: its stdout parsed. */
export async function qrfleetJson<T>(args: string[], env: Record<string, string>, opts: CliOptions): Promise<T> {
  const out = await qrfleet([...args, "--json"], env, opts);
  try {
    return JSON.parse(out) as T;
  } catch {
    throw new CliError(`qrfleet ${args.slice(0, 2).join(" ")} printed something that is not JSON: ${out.slice(0, 200)}`);
  }
}
