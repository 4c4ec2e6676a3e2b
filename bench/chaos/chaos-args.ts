import { Command, CommanderError, InvalidArgumentError, Option } from "commander";
import type { FaultParams } from "./scenarios.js";
import type { Timings } from "./timings.js";

/** The command line of `npm run chaos --`: parsed, range-checked, refused with a sentence a person can act on. */

export interface ChaosArgs {
  sessions: number;
  /** Names of the scenarios to run; empty: all of them. */
  scenarios: string[];
  timings: Timings;
  faults: FaultParams;
  settleMs: number;
  keepLogs: boolean;
}

export class ChaosUsageError extends Error {
  override name = "ChaosUsageError";
}

function number(min: number, max: number, whole = false) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isFinite(n) || n < min || n > max || (whole && !Number.isInteger(n))) {
      throw new InvalidArgumentError(`It must be a ${whole ? "whole " : ""}number from ${min} to ${max}.`);
    }
    return n;
  };
}

function program(names: readonly string[]): Command {
  const s = (flag: string, what: string, def: number, max = 3600) => new Option(flag, what).argParser(number(0.1, max)).default(def);
  return new Command("npm run chaos --")
    .description("faults injected into running daemons under load; prints, per scenario, what was injected and what was lost or duplicated")
    .addOption(new Option("--sessions <n>", "simulated instances per scenario, all logged out").argParser(number(1, 20_000, true)).default(500))
    .addOption(new Option("--scenario <name...>", "run only these scenarios").choices([...names]))
    .addOption(s("--window-s <s>", "scan window of one socket", 10, 600))
    .addOption(new Option("--attempts <n>", "attempts of one session").argParser(number(1, 10, true)).default(2))
    .addOption(new Option("--rotate-ms <ms>", "QR rotation of every socket").argParser(number(100, 60_000, true)).default(1_000))
    .addOption(s("--smtp-outage-s <s>", "how long the mail server stays away", 60))
    .addOption(s("--pg-down-s <s>", "how long PostgreSQL stays stopped", 10))
    .addOption(s("--redis-down-s <s>", "how long Redis stays away (it comes back empty)", 10))
    .addOption(s("--webhook-fault-s <s>", "how long each webhook fault (500s, hangs, resets) lasts", 1.5))
    .addOption(new Option("--kills <n>", "kill -9s of a daemon, at random moments").argParser(number(1, 100, true)).default(4))
    .addOption(s("--spread-s <s>", "the kills land within this many seconds of the start", 20))
    .addOption(s("--settle-s <s>", "after the faults, how long to wait for every session to end and every delivery to be final", 600, 7200))
    .addOption(new Option("--retry-multiplier <x>", "QRFLEET_DELIVERY_RETRY_MULTIPLIER: outcome retries at 5 s, 5 min… times this").argParser(number(0.001, 10)).default(0.2))
    .option("--keep-logs", "keep each scenario's daemon logs (their directory is printed)", false)
    .exitOverride()
    .configureOutput({ writeErr: () => undefined, outputError: () => undefined });
}

interface Parsed {
  sessions: number; scenario?: string[]; windowS: number; attempts: number; rotateMs: number; smtpOutageS: number; pgDownS: number;
  redisDownS: number; webhookFaultS: number; kills: number; spreadS: number; settleS: number; retryMultiplier: number; keepLogs: boolean;
}

/** The parsed arguments, or "help" (the usage is printed on stdout). Throws ChaosUsageError for anything else. */
export function parseChaosArgs(argv: readonly string[], names: readonly string[]): ChaosArgs | "help" {
  const cmd = program(names);
  try {
    cmd.parse([...argv], { from: "user" });
  } catch (err) {
    if (err instanceof CommanderError && err.code === "commander.helpDisplayed") {
      process.stdout.write(cmd.helpInformation());
      return "help";
    }
    if (err instanceof CommanderError) throw new ChaosUsageError(err.message.replace(/^error: /, ""));
    throw err;
  }
  const o = cmd.opts<Parsed>();
  const ms = (s: number) => Math.round(s * 1000);
  return {
    sessions: o.sessions,
    scenarios: o.scenario ?? [],
    timings: { rotationMs: o.rotateMs, windowMs: ms(o.windowS), attempts: o.attempts, retryMultiplier: o.retryMultiplier },
    faults: {
      smtpOutageMs: ms(o.smtpOutageS), pgDownMs: ms(o.pgDownS), redisDownMs: ms(o.redisDownS), webhookFaultMs: ms(o.webhookFaultS),
      kills: o.kills, spreadMs: ms(o.spreadS),
    },
    settleMs: ms(o.settleS),
    keepLogs: o.keepLogs,
  };
}
