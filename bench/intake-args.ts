import { Command, Option } from "commander";
import { envPair, parseInto, whole } from "./args.js";

/** `npm run bench -- --intake RATE …`: the provider webhook intake alone (BENCH.md, "The webhook intake"). */

export interface IntakeArgs {
  mode: "intake";
  /** Webhooks a second from the provider, each with its instance's token. */
  rate: number;
  seconds: number;
  instances: number;
  /** Webhooks a second without a valid token, alongside; 0: none. */
  unauthenticated: number;
  profile: boolean;
  env: Record<string, string>;
}

/** The intake mode has its own options: `--intake` anywhere on the command line selects it. */
export function wantsIntake(argv: readonly string[]): boolean {
  return argv.some((a) => a === "--intake" || a.startsWith("--intake="));
}

function program(): Command {
  return new Command("npm run bench -- --intake")
    .description("the provider webhook intake: one daemon, webhooks posted at a fixed rate by a load generator of its own")
    .addOption(new Option("--intake <rate>", "stateInstanceChanged webhooks a second, with the right token").argParser(whole(1, 50_000)).makeOptionMandatory())
    .addOption(new Option("--seconds <s>", "how long the webhooks are posted").argParser(whole(1, 3600)).default(30))
    .addOption(new Option("--instances <n>", "instances with a webhook token, the webhooks spread evenly over them").argParser(whole(1, 50_000)).default(1000))
    .addOption(new Option("--unauthenticated <rate>", "webhooks a second with a wrong token, alongside").argParser(whole(0, 50_000)).default(0))
    .option("--profile", "CPU-profile the daemon and summarise it", false)
    .addOption(new Option("--env <KEY=VALUE...>", "extra environment of the CLI and the daemon (repeatable)").argParser(envPair))
    .exitOverride()
    .configureOutput({ writeErr: () => undefined, outputError: () => undefined });
}

/** The parsed arguments, or "help" when --help was asked. Throws BenchUsageError for anything else. */
export function parseIntakeArgs(argv: readonly string[]): IntakeArgs | "help" {
  const cmd = program();
  if (parseInto(cmd, argv) === "help") return "help";
  const o = cmd.opts<{ intake: number; seconds: number; instances: number; unauthenticated: number; profile: boolean; env?: Record<string, string> }>();
  return {
    mode: "intake", rate: o.intake, seconds: o.seconds, instances: o.instances, unauthenticated: o.unauthenticated, profile: o.profile, env: o.env ?? {},
  };
}
