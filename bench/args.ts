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
  /** Seconds after t0 when the first daemon gets SIGKILL; null: never. */
  killAfter: number | null;
  /** Delay added to every chunk each way between the fleet and PostgreSQL; 0: no proxy. */
  pgLatencyMs: number;
  profile: boolean;
  /** Extra environment of the CLI and the daemons, applied last. */
  env: Record<string, string>;
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
    .addOption(new Option("--seconds <s>", "length of each phase, from t0").argParser(whole(1, 3600)).default(90))
    .addOption(new Option("--daemons <k>", "daemon processes").argParser(whole(1, 16)).default(1))
    .option("--floor", "measure the bare client first, in the same run", false)
    .addOption(new Option("--window-ms <ms>", "scan window of one socket (the provider's is 100000)").argParser(whole(1000, 3_600_000)).default(100_000))
    .addOption(new Option("--start <how>", "who starts the sessions: the daemon's fleet sweep, or `qrfleet enqueue --all-unlinked`").choices(["sweep", "enqueue"]).default("sweep"))
    .addOption(new Option("--kill-after <s>", "SIGKILL the first daemon this many seconds after t0").argParser(seconds))
    .addOption(new Option("--pg-latency-ms <ms>", "delay every chunk to and from PostgreSQL by this much").argParser(whole(0, 1000)).default(0))
    .option("--profile", "CPU-profile the first daemon and summarise it", false)
    .addOption(new Option("--env <KEY=VALUE...>", "extra environment of the CLI and the daemons (repeatable)").argParser(envPair))
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
  const o = cmd.opts<Omit<BenchArgs, "killAfter" | "env"> & { killAfter?: number; env?: Record<string, string> }>();
  const args: BenchArgs = { ...o, killAfter: o.killAfter ?? null, env: o.env ?? {} };
  if (args.killAfter !== null && args.daemons < 2) {
    throw new BenchUsageError("--kill-after needs --daemons 2 or more, so that another daemon can take over the killed one's sessions.");
  }
  if (args.killAfter !== null && args.killAfter >= args.seconds) {
    throw new BenchUsageError(`--kill-after ${args.killAfter} must be less than --seconds ${args.seconds}, or the kill happens after the run.`);
  }
  return args;
}
