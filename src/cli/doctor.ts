import { Command } from "commander";
import { runDoctor, type Check, type CheckArea, type DoctorReport } from "../fleet/observe/doctor.js";
import { EXIT, emit, intArg, type Out } from "./output.js";

/** `qrfleet doctor`: checks this daemon's configuration and every service it needs, and says what to fix. */

const LABEL: Record<Check["status"], string> = { ok: "ok  ", warn: "WARN", fail: "FAIL", skip: "skip" };
const AREAS: CheckArea[] = ["configuration", "postgresql", "redis", "smtp", "provider", "webhooks"];

export function describeDoctor(r: DoctorReport): string {
  const lines: string[] = [];
  for (const area of AREAS) {
    const checks = r.checks.filter((c) => c.area === area);
    if (checks.length === 0) continue;
    lines.push(area);
    for (const c of checks) {
      lines.push(`  ${LABEL[c.status]}  ${c.detail}`);
      if (c.fix && c.status !== "ok") lines.push(`        fix: ${c.fix}`);
    }
  }
  const count = (n: number, what: string) => `${n} ${what}${n === 1 ? "" : "s"}`;
  lines.push(r.ok ? "everything checked is OK" : `${count(r.failed, "problem")} and ${count(r.warned, "warning")}: fix them and run qrfleet doctor again`);
  return lines.join("\n");
}

interface DoctorOpts extends Out {
  sample: number;
  timeoutMs: number;
}

export function doctorCommand(): Command {
  return new Command("doctor")
    .description("check the configuration, PostgreSQL, Redis, SMTP and the provider's hosts, and say what fixes each problem")
    .option("--sample <n>", "instances whose webhook settings are read at the provider", intArg(0, 1000), 20)
    .option("--timeout-ms <ms>", "bound of each check of PostgreSQL, Redis and SMTP", intArg(100, 120_000), 5_000)
    .option("--json", "print JSON")
    .addHelpText("after", "\nNothing is written anywhere. Exit code 1 when a check fails or warns, 0 when every one is OK.")
    .action(async (o: DoctorOpts) => {
      const report = await runDoctor({ sample: o.sample, timeoutMs: o.timeoutMs });
      emit(o, report, describeDoctor);
      if (!report.ok) process.exitCode = EXIT.failed;
    });
}
