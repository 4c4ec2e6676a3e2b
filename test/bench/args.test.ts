import { describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import { BenchUsageError, parseBenchArgs, type BenchArgs } from "../../bench/args.js";
import { startScriptFlags } from "../../bench/daemons.js";
import { runBench } from "./built.js";

const refused = (argv: string[]) => {
  try {
    parseBenchArgs(argv);
  } catch (err) {
    expect(err).toBeInstanceOf(BenchUsageError);
    return (err as Error).message;
  }
  throw new Error(`${argv.join(" ")} was accepted`);
};

describe("bench arguments", () => {
  it("has the documented defaults", () => {
    expect(parseBenchArgs([])).toEqual({
      sessions: 2000, rotateMs: 20_000, seconds: 90, daemons: 1, floor: false, windowMs: 100_000,
      start: "sweep", emailMode: "digest", killAfter: null, pgLatencyMs: 0, profile: false, env: {}, watch: null,
    });
  });

  it("reads every option; --env repeats or takes several pairs", () => {
    const args = parseBenchArgs([
      "--sessions", "10000", "--rotate-ms", "1000", "--seconds", "60", "--daemons", "2", "--floor", "--window-ms", "600000",
      "--start", "enqueue", "--email-mode", "immediate", "--kill-after", "20", "--pg-latency-ms", "20", "--profile",
      "--env", "QRFLEET_CONCURRENCY=4000", "--env", "QRFLEET_DB_POOL=40", "LOG_LEVEL=info",
    ]);
    expect(args).toEqual({
      sessions: 10_000, rotateMs: 1000, seconds: 60, daemons: 2, floor: true, windowMs: 600_000, start: "enqueue",
      emailMode: "immediate", killAfter: 20, pgLatencyMs: 20, profile: true,
      env: { QRFLEET_CONCURRENCY: "4000", QRFLEET_DB_POOL: "40", LOG_LEVEL: "info" }, watch: null,
    });
    expect((parseBenchArgs(["--env", "A=x=y", "--env", "B="]) as BenchArgs).env).toEqual({ A: "x=y", B: "" });
  });

  it("refuses garbage with a sentence that names the option and what it takes", () => {
    expect(refused(["--sessions", "abc"])).toMatch(/--sessions.*'abc'.*whole number from 1 to 50000/);
    expect(refused(["--sessions", "0"])).toMatch(/--sessions/);
    expect(refused(["--rotate-ms", "1.5"])).toMatch(/--rotate-ms.*whole number/);
    expect(refused(["--start", "later"])).toMatch(/--start.*sweep, enqueue/);
    expect(refused(["--email-mode", "hourly"])).toMatch(/--email-mode.*digest, immediate/);
    expect(refused(["--kill-after", "-3", "--daemons", "2"])).toMatch(/--kill-after/);
    expect(refused(["--env", "no-equals-sign"])).toMatch(/KEY=VALUE/);
    expect(refused(["--env", "DATABASE_URL=postgresql://elsewhere/db"])).toMatch(/DATABASE_URL is set by the bench itself/);
    expect(refused(["--bogus"])).toMatch(/unknown option '--bogus'/);
    expect(refused(["10000"])).toMatch(/too many arguments/);
    expect(refused(["--seconds"])).toMatch(/--seconds.*argument missing/);
  });

  it("refuses combinations that cannot mean anything", () => {
    expect(refused(["--kill-after", "20"])).toMatch(/--kill-after needs --daemons 2 or more/);
    expect(refused(["--kill-after", "90", "--daemons", "2"])).toMatch(/less than --seconds 90/);
  });

  it("--watch: the steady-state run, its interval read from --env, its length several intervals by default", () => {
    const watch = (argv: string[]) => parseBenchArgs(["--watch", "100000", "--provider-latency-ms", "100", ...argv]) as BenchArgs;
    expect(watch([])).toMatchObject({
      seconds: 330, daemons: 1, floor: false,
      watch: { instances: 100_000, providerLatencyMs: 100, logouts: 0, providerWebhooks: false, sweepIntervalMs: 60_000 },
    });
    const full = watch(["--logouts", "500", "--provider-webhooks", "--daemons", "2", "--floor", "--env", "QRFLEET_SWEEP_INTERVAL_MS=5000"]);
    expect(full).toMatchObject({
      seconds: 55, daemons: 2, floor: true, env: { QRFLEET_SWEEP_INTERVAL_MS: "5000" },
      watch: { instances: 100_000, providerLatencyMs: 100, logouts: 500, providerWebhooks: true, sweepIntervalMs: 5000 },
    });
    expect(watch(["--seconds", "20", "--logouts", "5", "--env", "QRFLEET_SWEEP_INTERVAL_MS=5000"]).seconds).toBe(20);
    expect(watch([]).watch?.floorProcesses).toBe(1);
    expect(watch(["--floor", "--daemons", "2", "--floor-processes", "2"]).watch?.floorProcesses).toBe(2);
  });

  it("--watch refuses what a steady-state run cannot mean, and its options without it", () => {
    const watch = ["--watch", "200", "--provider-latency-ms", "20"];
    expect(refused(["--watch", "lots"])).toMatch(/--watch.*'lots'.*whole number from 1 to 200000/);
    expect(refused(["--watch", "200"])).toMatch(/--watch needs --provider-latency-ms/);
    expect(refused([...watch, "--sessions", "100"])).toMatch(/--watch and --sessions are two different runs/);
    expect(refused([...watch, "--start", "enqueue"])).toMatch(/--start only applies to a QR run/);
    expect(refused(["--floor-processes", "2"])).toMatch(/--floor-processes only applies to a steady-state run/);
    expect(refused([...watch, "--floor-processes", "0"])).toMatch(/--floor-processes/);
    expect(refused([...watch, "--kill-after", "5", "--daemons", "2"])).toMatch(/--kill-after only applies to a QR run/);
    expect(refused([...watch, "--logouts", "201"])).toMatch(/--logouts 201 is more than the 200 instances/);
    expect(refused([...watch, "--provider-latency-ms", "-1"])).toMatch(/--provider-latency-ms/);
    expect(refused([...watch, "--env", "QRFLEET_SWEEP_INTERVAL_MS=soon"])).toMatch(/QRFLEET_SWEEP_INTERVAL_MS=soon: it must be a whole number of ms, 1000 or more/);
    expect(refused([...watch, "--env", "QRFLEET_SWEEP_INTERVAL_MS=500"])).toMatch(/1000 or more/);
    expect(refused([...watch, "--seconds", "100"])).toMatch(/--seconds 100 is too short.*60 s.*at least 120 \(2 intervals/);
    expect(refused([...watch, "--seconds", "15", "--logouts", "5", "--env", "QRFLEET_SWEEP_INTERVAL_MS=5000"])).toMatch(/at least 20 \(4 intervals/);
    expect(refused(["--provider-latency-ms", "100"])).toMatch(/--provider-latency-ms only applies to a steady-state run: add --watch <n>/);
    expect(refused(["--logouts", "5"])).toMatch(/--logouts only applies/);
    expect(refused(["--provider-webhooks"])).toMatch(/--provider-webhooks only applies/);
  });

  it("the command prints the sentence on stderr, nothing on stdout, and exits 2", async () => {
    const bad = await runBench(["--sessions", "lots"], 20_000);
    expect(bad.code).toBe(2);
    expect(bad.stdout).toBe("");
    expect(bad.stderr).toMatch(/^qrfleet bench: option '--sessions <n>' argument 'lots' is invalid\. It must be a whole number from 1 to 50000\.\n/);
    const help = await runBench(["--help"], 20_000);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/--pg-latency-ms <ms>/);
  });

  it("starts each daemon with the node flags of npm start, and refuses a start script it cannot read them from", () => {
    const start = (JSON.parse(readFileSync("package.json", "utf8")) as { scripts: { start: string } }).scripts.start;
    expect(startScriptFlags(start).some((f) => f.startsWith("--max-semi-space-size="))).toBe(true);
    expect(startScriptFlags("npm run build && exec node --a=1 --b dist/workers/main.js")).toEqual(["--a=1", "--b"]);
    expect(startScriptFlags("exec node dist/workers/main.js")).toEqual([]);
    expect(() => startScriptFlags("node dist/workers/main.js --inspect")).toThrow(/start script/);
  });
});
