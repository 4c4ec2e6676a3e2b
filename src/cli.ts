#!/usr/bin/env node
import { realpathSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Command } from "commander";
import { doctorCommand } from "./cli/doctor.js";
import { fleetCommands } from "./cli/fleet.js";
import { instanceCommand } from "./cli/instances.js";
import { keyCommands } from "./cli/keys.js";
import { operatorCommands } from "./cli/operators.js";
import { exitCodeOf, reportError } from "./cli/output.js";
import { scanCommand } from "./cli/scan.js";
import { sessionCommands } from "./cli/sessions.js";
import { LONG_RUNNING, systemCommands } from "./cli/system.js";
import { packageVersion } from "./paths.js";

/** `qrfleet`: a face over the same src/fleet functions the HTTP API uses. */

const EXIT_CODES = `
Every command takes --json and prints the same objects the HTTP API returns (dates in ISO 8601).
Exit codes: 0 done; 1 failed (not found, conflict, invalid data, provider or database error);
2 bad usage or configuration. An error is one line on stderr: "qrfleet: <message>", or with
--json {"error":{"code":"…","message":"…"}}. Logs go to stderr at warn (LOG_LEVEL to change).
Configuration comes from the environment and .env (see .env.example).`;


function everyCommand(cmd: Command, apply: (c: Command) => void): void {
  apply(cmd);
  for (const sub of cmd.commands) everyCommand(sub, apply);
}

export function buildProgram(): Command {
  const program = new Command("qrfleet")
    .description("keeps a fleet of GREEN-API WhatsApp instances linked")
    .version(packageVersion())
    .addHelpText("after", EXIT_CODES);
  const commands = [
    ...systemCommands(), scanCommand(), instanceCommand(), ...sessionCommands(), ...operatorCommands(), ...fleetCommands(), ...keyCommands(), doctorCommand(),
  ];
  for (const cmd of commands) program.addCommand(cmd);
  // Commander would exit(1) on a usage error; thrown instead, it maps to exit 2 like every other bad input.
  everyCommand(program, (c) => c.exitOverride());
  return program;
}

export interface CliRun {
  code: number;
  /** The daemon and the simulator keep the process alive until a signal. */
  longRunning: boolean;
}

export async function runCli(argv: readonly string[] = process.argv): Promise<CliRun> {
  const program = buildProgram();
  let longRunning = false;
  program.hook("preAction", (_program, action) => {
    longRunning = LONG_RUNNING.has(action.name());
  });
  try {
    await program.parseAsync([...argv]);
    return { code: Number(process.exitCode ?? 0), longRunning };
  } catch (err) {
    reportError(err, argv.includes("--json"));
    return { code: exitCodeOf(err), longRunning: false };
  }
}

/** Compared through realpath: an installed bin is a symlink to dist/src/cli.js. */
function isEntry(): boolean {
  const script = process.argv[1];
  if (!script) return false;
  try {
    return realpathSync(script) === fileURLToPath(import.meta.url);
  } catch {
    return false;
  }
}

/** A one-shot command has closed its connections; this bound only catches a handle left open. */
const EXIT_BOUND_MS = 3_000;

if (isEntry()) {
  void runCli().then(({ code, longRunning }) => {
    process.exitCode = code;
    if (!longRunning || code !== 0) setTimeout(() => process.exit(code), EXIT_BOUND_MS).unref();
  });
}
