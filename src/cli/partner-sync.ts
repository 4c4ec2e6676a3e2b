import { Command } from "commander";
import { syncPartnerAccount, type SyncChange, type SyncProgress, type SyncReport } from "../fleet/partner/partner-sync.js";
import { untilStopped, withFleet } from "./context.js";
import { EXIT, emit, progressLine, type Out } from "./output.js";

/** `qrfleet instance sync`: the fleet made to match the partner account of GREENAPI_PARTNER_TOKEN. */

/** Changes named one per line in the text summary; --json lists them all. */
const SHOWN_CHANGES = 50;
/** Sealing thousands of tokens and a listing of tens of thousands: minutes at most. */
const SYNC_BOUND_MS = 600_000;

const STEP_WORDS: Record<SyncProgress["step"], string> = {
  listed: "instances listed by the partner account",
  created: "created",
  updated: "updated",
  disabled: "disabled",
};

/** Progress of a sync, drawn as `progressLine` does. */
export function progressReporter(stream: NodeJS.WriteStream = process.stderr): { report: (p: SyncProgress) => void; end: () => void } {
  const line = progressLine(stream);
  return {
    report: (p) => line.draw(p.step === "listed" ? `qrfleet: ${p.done} ${STEP_WORDS.listed}` : `qrfleet: ${STEP_WORDS[p.step]} ${p.done} of ${p.total}`),
    end: line.end,
  };
}

function changeLine(c: SyncChange): string {
  const detail = Array.isArray(c.detail) ? (c.detail.length > 0 ? ` (${c.detail.join(", ")})` : "") : ` (${c.detail === "deleted" ? "deleted by the account" : "no longer listed"})`;
  return `  ${c.change} ${c.idInstance}${detail}`;
}

export function describeSync(r: SyncReport): string {
  const counts = `${r.created} created, ${r.updated} updated, ${r.unchanged} unchanged, ${r.disabled} disabled, ${r.skipped} skipped, ${r.errors.length} errors`;
  const lines = [r.dryRun ? `dry run (nothing written), ${r.listed} listed: would be ${counts}` : `partner account synced, ${r.listed} listed: ${counts}`];
  lines.push(...r.changes.slice(0, SHOWN_CHANGES).map(changeLine));
  if (r.changes.length > SHOWN_CHANGES) lines.push(`  … and ${r.changes.length - SHOWN_CHANGES} more (--json lists them all)`);
  lines.push(...r.errors.map((e) => `  error ${e.idInstance ?? "(no idInstance)"}: ${e.message}`));
  if (r.created + r.updated + r.disabled === 0 && r.errors.length === 0) lines.push("nothing to change: the fleet already matches the partner account");
  return lines.join("\n");
}

export function syncCommand(): Command {
  return new Command("sync")
    .description("create or update every instance of the partner account (GREENAPI_PARTNER_TOKEN); disable those it deleted or no longer lists")
    .option("--dry-run", "only count what would change; write nothing")
    .option("--json", "print JSON")
    .addHelpText("after", "\nRun it again and it changes nothing. Exit code 1 when an entry could not be synced (each is named).")
    .action(async (o: Out & { dryRun?: boolean }) => {
      const progress = progressReporter();
      const report = await untilStopped((signal) =>
        withFleet((ctx) => syncPartnerAccount(ctx, { dryRun: o.dryRun === true, onProgress: progress.report, signal }), {
          boundMs: SYNC_BOUND_MS, waitingFor: "the partner account sync to finish",
        }),
      ).finally(progress.end);
      emit(o, report, describeSync);
      if (report.errors.length > 0) process.exitCode = EXIT.failed;
    });
}
