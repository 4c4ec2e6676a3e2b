import { Command } from "commander";
import { rotateKey, sealedColumn, type KindReport, type RotationReport } from "../fleet/upkeep/key-rotation.js";
import { untilStopped, withFleet } from "./context.js";
import { EXIT, emit, intArg, type Out } from "./output.js";

/** `qrfleet rotate-key`: every sealed value under the current key, with daemons running. */

interface RotateOpts extends Out {
  check?: boolean;
  batchSize: number;
}

function kindLine(k: KindReport, checkOnly: boolean): string {
  const parts = checkOnly
    ? [`${k.underOldKey} under an old key`, `${k.alreadyCurrent} current`]
    : [`${k.reEncrypted} re-encrypted`, `${k.alreadyCurrent} already current`];
  if (!checkOnly && k.underOldKey > 0) parts.push(`${k.underOldKey} changed while rotating (run again)`);
  parts.push(`${k.unreadable.length} unreadable`);
  return `${sealedColumn(k.kind).what}: ${parts.join(", ")}`;
}

export function describeRotation(r: RotationReport): string {
  const lines = [r.checkOnly ? `values not yet under the current key (id ${r.keyId}):` : `re-encrypted under the current key (id ${r.keyId}):`];
  lines.push(...r.kinds.map((k) => `  ${kindLine(k, r.checkOnly)}`));
  for (const k of r.kinds) {
    const { what, owner } = sealedColumn(k.kind);
    for (const id of k.unreadable) lines.push(`unreadable: ${what.replace(/s$/, "")} of ${owner} ${id} opens under none of the configured keys`);
  }
  if (!r.complete) lines.push("stopped before the end: run qrfleet rotate-key again to finish (what is done stays done)");
  else if (r.checkOnly && r.kinds.every((k) => k.underOldKey === 0 && k.unreadable.length === 0)) {
    lines.push("every value is under the current key: QRFLEET_SECRET_KEYS_PREVIOUS can be emptied");
  }
  return lines.join("\n");
}

/** Done means every value opened and, for --check, none is left under an old key. */
function succeeded(r: RotationReport): boolean {
  return r.complete && r.kinds.every((k) => k.unreadable.length === 0 && k.underOldKey === 0);
}

/** On stderr, so stdout holds only the result (and stays parseable with --json). */
function progressLine(k: Readonly<KindReport>): void {
  process.stderr.write(`qrfleet: ${sealedColumn(k.kind).what}: ${k.read} read, ${k.reEncrypted} re-encrypted, ${k.alreadyCurrent} already current, ${k.unreadable.length} unreadable\n`);
}

function rotateKeyCommand(): Command {
  return new Command("rotate-key")
    .description("re-encrypt every instance token and webhook secret under QRFLEET_SECRET_KEY (daemons may keep running)")
    .option("--check", "only count the values still under a previous key; write nothing")
    .option("--dry-run", "the same as --check")
    .option("--batch-size <n>", "rows read and written per statement", intArg(1, 10_000), 500)
    .option("--json", "print JSON")
    .addHelpText("after", "\nExit code 1 when a value opens under none of the configured keys, when the run was\nstopped (Ctrl-C: run it again to resume), or with --check when a value is still under an old key.")
    .action(async (o: RotateOpts & { dryRun?: boolean }) => {
      const checkOnly = o.check === true || o.dryRun === true;
      const report = await untilStopped((signal) =>
        withFleet((ctx) => rotateKey(ctx, { checkOnly, batchSize: o.batchSize, signal, onProgress: progressLine }), { boundMs: 24 * 3_600_000 }),
      );
      emit(o, report, describeRotation);
      if (!succeeded(report)) process.exitCode = EXIT.failed;
    });
}

export function keyCommands(): Command[] {
  return [rotateKeyCommand()];
}
