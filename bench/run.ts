// npm run bench: the daemon end to end, as its users run it, against a simulated GREEN-API, and
// (with --floor) a bare client doing the same per-QR work in the same run; or, with --watch, the
// fleet sweep in steady state beside a bare poller. Progress on stderr once a second; at the end
// one JSON line on stdout. See BENCH.md.
import { BenchUsageError, parseBenchArgs, type BenchArgs } from "./args.js";
import { daemonPhase } from "./daemon-phase.js";
import { floorPhase } from "./floor-phase.js";
import { parseIntakeArgs, wantsIntake, type IntakeArgs } from "./intake-args.js";
import { intakeBench, intakeSettings } from "./intake-run.js";
import { ratios, type PhaseReport } from "./phase-report.js";
import { openRun } from "./run-context.js";
import { Teardown } from "./teardown.js";
import { watchRun, watchSettings } from "./watch-run.js";

function argsOrExit(): BenchArgs | IntakeArgs {
  try {
    const argv = process.argv.slice(2);
    const parsed = wantsIntake(argv) ? parseIntakeArgs(argv) : parseBenchArgs(argv);
    if (parsed === "help") process.exit(0);
    return parsed;
  } catch (err) {
    if (!(err instanceof BenchUsageError)) throw err;
    process.stderr.write(`qrfleet bench: ${err.message}\n(npm run bench -- --help lists the options)\n`);
    process.exit(2);
  }
}

function settings(args: BenchArgs | IntakeArgs) {
  if ("mode" in args) return intakeSettings(args);
  if (args.watch) return watchSettings(args);
  return {
    sessions: args.sessions,
    rotateMs: args.rotateMs,
    windowMs: args.windowMs,
    seconds: args.seconds,
    daemons: args.daemons,
    start: args.start,
    pgLatencyMs: args.pgLatencyMs,
    env: args.env,
  };
}

const args = argsOrExit();
const teardown = new Teardown();
const interrupt = new AbortController();

let finishing: Promise<never> | undefined;
/** Cleans up, prints the one JSON line, exits: once, whether the run ended, failed or was interrupted. */
function finish(line: Record<string, unknown>, code: number): Promise<never> {
  return (finishing ??= (async () => {
    await teardown.run();
    process.stdout.write(`${JSON.stringify(line)}\n`);
    return process.exit(code);
  })());
}

function failed(err: unknown): Record<string, unknown> {
  const message = err instanceof Error ? err.message : String(err);
  process.stderr.write(`bench: ${message}\n`);
  return { ...settings(args), error: message };
}

let signals = 0;
for (const name of ["SIGINT", "SIGTERM"] as const) {
  process.on(name, () => {
    // A second Ctrl-C means "now": whatever is left running is the user's to clean up.
    if (++signals > 1) process.exit(130);
    process.stderr.write(`bench: ${name}: stopping everything it started\n`);
    interrupt.abort(new Error(`interrupted by ${name}`));
  });
}
// A bug in a callback must still stop the daemons and drop the databases.
process.on("uncaughtException", (err) => void finish(failed(err), 1));

try {
  if ("mode" in args) await finish(await intakeBench(args, teardown, interrupt.signal), 0);
  else await benchQr(args);
} catch (err) {
  await finish(failed(err), interrupt.signal.aborted ? 130 : 1);
}

async function benchQr(args: BenchArgs): Promise<void> {
  const run = await openRun(args, teardown, interrupt.signal);
  if (args.watch) await finish({ ...settings(args), ...(await watchRun(run)) }, 0);
  const floor: PhaseReport | undefined = args.floor ? await floorPhase(run) : undefined;
  const { profile, ...daemon } = await daemonPhase(run);
  await finish({ ...settings(args), daemon, ...(floor && { floor, ratios: ratios(daemon, floor) }), ...(profile && { profile }) }, 0);
}
