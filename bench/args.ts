import { Command, CommanderError, InvalidArgumentError, Option } from "commander";

/** The command line of `npm run bench --`: parsed, range-checked, and refused with a sentence a person can act on. */

export interface BenchArgs {
  sessions: number;
  rotateMs: number;
  seconds: number;
  daemons: number;
  floor: boolean;
  windowMs: number;
  start: "sweep" | "enqueue";
  /** The fleet-wide email operator's mode: digest (its default) or each first QR on its own. */
  emailMode: "digest" | "immediate";
  /** Seconds after t0 when the first daemon gets SIGKILL; null: never. */
  killAfter: number | null;
  /** Delay added to every chunk each way between the fleet and PostgreSQL; 0: no proxy. */
  pgLatencyMs: number;
  profile: boolean;
  /** Extra environment of the CLI and the daemons, applied last. */
  env: Record<string, string>;
  /** The steady-state run (--watch) instead of the QR run; null: the QR run. */
  watch: WatchArgs | null;
}

export interface WatchArgs {
  /** Simulated instances, all linked at start. */
  instances: number;
  /** ms the fake provider takes to answer getStateInstance. */
  providerLatencyMs: number;
  /** Bare pollers the floor runs, each with its share of the fleet (as the daemons share it). */
  floorProcesses: number;
  /** Instances logged out during the measured window, spread evenly over one sweep interval. */
  logouts: number;
  /** The provider also POSTs stateInstanceChanged to a daemon at each logout. */
  providerWebhooks: boolean;
  /** The daemons' QRFLEET_SWEEP_INTERVAL_MS: --env's, or the daemon's default. */
  sweepIntervalMs: number;
}

/** A bad command line: the bench prints the message and exits 2. */
export class BenchUsageError extends Error {
  override name = "BenchUsageError";
}

/**
 * The bench owns these: they point the fleet at the run's own database, Redis prefix, mail sink
 * and ports, and the cleanup removes exactly those. Changing them would measure (or delete) something else.
 */
const OWNED_ENV = ["DATABASE_URL", "REDIS_URL", "QRFLEET_REDIS_PREFIX", "SMTP_URL", "PORT", "HOST"];

/** The daemon's own default of QRFLEET_SWEEP_INTERVAL_MS (src/config.ts), and its lower bound. */
const DAEMON_SWEEP_INTERVAL_MS = 60_000;
const MIN_SWEEP_INTERVAL_MS = 1000;
/** --seconds of a QR run when none is given. */
const QR_RUN_SECONDS = 90;

export function whole(min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^\d+$/.test(value.trim()) || n < min || n > max) {
      throw new InvalidArgumentError(`It must be a whole number from ${min} to ${max}.`);
    }
    return n;
  };
}

function seconds(value: string): number {
  const n = Number(value);
  if (!/^\d+(\.\d+)?$/.test(value.trim()) || n <= 0) throw new InvalidArgumentError("It must be a number of seconds above 0.");
  return n;
}

export function envPair(value: string, previous: Record<string, string> = {}): Record<string, string> {
  const match = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/s.exec(value);
  if (!match) throw new InvalidArgumentError("It must be KEY=VALUE, e.g. QRFLEET_CONCURRENCY=2000.");
  const [, key, val] = match;
  if (OWNED_ENV.includes(key!)) {
    throw new InvalidArgumentError(`${key} is set by the bench itself (it points at the run's own services, which it also removes).`);
  }
  return { ...previous, [key!]: val! };
}

function program(): Command {
  return new Command("npm run bench --")
    .description("the daemon end to end against a simulated GREEN-API, beside a bare client measured in the same run")
    .addOption(new Option("--sessions <n>", "simulated instances, all logged out").argParser(whole(1, 50_000)).default(2000))
    .addOption(new Option("--rotate-ms <ms>", "QR rotation period of every socket").argParser(whole(100, 600_000)).default(20_000))
    .addOption(new Option("--seconds <s>", "length of each phase, from t0 (default 90); --watch: from readiness (default 5 sweep intervals + 30)").argParser(whole(1, 3600)))
    .addOption(new Option("--daemons <k>", "daemon processes").argParser(whole(1, 16)).default(1))
    .option("--floor", "measure the bare client first, in the same run", false)
    .addOption(new Option("--window-ms <ms>", "scan window of one socket (the provider's is 100000)").argParser(whole(1000, 3_600_000)).default(100_000))
    .addOption(new Option("--start <how>", "who starts the sessions: the daemon's fleet sweep, or `qrfleet enqueue --all-unlinked`").choices(["sweep", "enqueue"]).default("sweep"))
    .addOption(new Option("--email-mode <mode>", "the fleet-wide email operator: digests (its default) or an email per attempt").choices(["digest", "immediate"]).default("digest"))
    .addOption(new Option("--kill-after <s>", "SIGKILL the first daemon this many seconds after t0").argParser(seconds))
    .addOption(new Option("--pg-latency-ms <ms>", "delay every chunk to and from PostgreSQL by this much").argParser(whole(0, 1000)).default(0))
    .option("--profile", "CPU-profile the first daemon and summarise it", false)
    .addOption(new Option("--env <KEY=VALUE...>", "extra environment of the CLI and the daemons (repeatable)").argParser(envPair))
    .addOption(new Option("--watch <n>", "steady state instead: n linked instances, the daemons' sweep measured end to end").argParser(whole(1, 200_000)))
    .addOption(new Option("--provider-latency-ms <ms>", "--watch: the fake provider answers getStateInstance after this long").argParser(whole(0, 10_000)))
    .addOption(new Option("--logouts <m>", "--watch: instances logged out over one sweep interval after the warm-up").argParser(whole(0, 200_000)))
    .option("--provider-webhooks", "--watch: the provider also POSTs stateInstanceChanged to a daemon at each logout")
    .addOption(new Option("--floor-processes <k>", "--watch --floor: bare pollers, each polling its share of the fleet (default 1)").argParser(whole(1, 16)))
    .addHelpText("after", "\nThe provider webhook intake instead: npm run bench -- --intake <rate> --help\n")
    .exitOverride()
    .configureOutput({ writeErr: () => undefined, outputError: () => undefined });
}

export function usage(): string {
  return program().helpInformation();
}

/** Parses `argv` into `cmd`; "help" when --help was asked. Throws BenchUsageError for anything else. */
export function parseInto(cmd: Command, argv: readonly string[]): "help" | "parsed" {
  try {
    cmd.parse([...argv], { from: "user" });
    return "parsed";
  } catch (err) {
    if (err instanceof CommanderError && err.code === "commander.helpDisplayed") return "help";
    if (err instanceof CommanderError) throw new BenchUsageError(err.message.replace(/^error: /, ""));
    throw err;
  }
}

/** The parsed arguments, or "help" when --help was asked. Throws BenchUsageError for anything else. */
export function parseBenchArgs(argv: readonly string[]): BenchArgs | "help" {
  const cmd = program();
  if (parseInto(cmd, argv) === "help") return "help";
  const o = cmd.opts<Omit<BenchArgs, "killAfter" | "env" | "watch" | "seconds"> & Partial<WatchOptions> & { killAfter?: number; env?: Record<string, string>; seconds?: number }>();
  const given = (name: string) => cmd.getOptionValueSource(name) === "cli";
  const { watch: instances, providerLatencyMs, logouts, providerWebhooks, floorProcesses, ...rest } = o;
  const env = o.env ?? {};
  const watch = instances === undefined ? refuseWatchOnly(o) : watchArgs({ instances, providerLatencyMs, logouts, providerWebhooks, floorProcesses }, env, given);
  const seconds = o.seconds ?? (watch ? (5 * watch.sweepIntervalMs) / 1000 + 30 : QR_RUN_SECONDS);
  const args: BenchArgs = { ...rest, seconds, killAfter: o.killAfter ?? null, env, watch };
  if (watch) checkWatchLength(watch, seconds);
  if (args.killAfter !== null && args.daemons < 2) {
    throw new BenchUsageError("--kill-after needs --daemons 2 or more, so that another daemon can take over the killed one's sessions.");
  }
  if (args.killAfter !== null && args.killAfter >= args.seconds) {
    throw new BenchUsageError(`--kill-after ${args.killAfter} must be less than --seconds ${args.seconds}, or the kill happens after the run.`);
  }
  return args;
}

interface WatchOptions {
  watch: number;
  providerLatencyMs: number;
  logouts: number;
  providerWebhooks: boolean;
  floorProcesses: number;
}

function refuseWatchOnly(o: Partial<WatchOptions>): null {
  const stray = o.providerLatencyMs !== undefined ? "--provider-latency-ms" : o.logouts !== undefined ? "--logouts" : o.providerWebhooks ? "--provider-webhooks"
    : o.floorProcesses !== undefined ? "--floor-processes" : null;
  if (stray) throw new BenchUsageError(`${stray} only applies to a steady-state run: add --watch <n>.`);
  return null;
}

function watchArgs(o: Partial<WatchOptions> & { instances: number }, env: Record<string, string>, given: (name: string) => boolean): WatchArgs {
  if (given("sessions")) throw new BenchUsageError("--watch and --sessions are two different runs: give one of them.");
  for (const [name, flag] of [["start", "--start"], ["killAfter", "--kill-after"]] as const) {
    if (given(name)) throw new BenchUsageError(`${flag} only applies to a QR run (--sessions), not to --watch.`);
  }
  if (o.providerLatencyMs === undefined) {
    throw new BenchUsageError("--watch needs --provider-latency-ms: how long the fake provider takes to answer getStateInstance (e.g. 100).");
  }
  const logouts = o.logouts ?? 0;
  if (logouts > o.instances) throw new BenchUsageError(`--logouts ${logouts} is more than the ${o.instances} instances of --watch.`);
  return {
    instances: o.instances, providerLatencyMs: o.providerLatencyMs, floorProcesses: o.floorProcesses ?? 1, logouts,
    providerWebhooks: o.providerWebhooks ?? false, sweepIntervalMs: sweepInterval(env),
  };
}

function sweepInterval(env: Record<string, string>): number {
  const raw = env.QRFLEET_SWEEP_INTERVAL_MS;
  if (raw === undefined) return DAEMON_SWEEP_INTERVAL_MS;
  if (!/^\d+$/.test(raw.trim()) || Number(raw) < MIN_SWEEP_INTERVAL_MS) {
    throw new BenchUsageError(`--env QRFLEET_SWEEP_INTERVAL_MS=${raw}: it must be a whole number of ms, ${MIN_SWEEP_INTERVAL_MS} or more.`);
  }
  return Number(raw);
}

/**
 * One interval of warm-up and one measured; with logouts, one to spread them over and two more:
 * the sweep may need a whole interval to come round to the last one, and its QR must still arrive.
 */
function checkWatchLength(watch: WatchArgs, seconds: number): void {
  const intervals = watch.logouts > 0 ? 4 : 2;
  const needed = Math.ceil((intervals * watch.sweepIntervalMs) / 1000);
  if (seconds >= needed) return;
  const why = watch.logouts > 0
    ? "one of warm-up, one to spread the logouts over, two for the sweep to find the last of them and its QR to arrive"
    : "one of warm-up, one measured";
  throw new BenchUsageError(
    `--seconds ${seconds} is too short for --watch with a sweep interval of ${watch.sweepIntervalMs / 1000} s: it needs at least ${needed} (${intervals} intervals: ${why}).`,
  );
}
