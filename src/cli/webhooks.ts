import { Command, Option } from "commander";
import { reviewWebhooks, type WebhookProgress, type WebhookReport, type WebhookRow } from "../fleet/instances/webhook-setup.js";
import { untilStopped, withFleet } from "./context.js";
import { dash, EXIT, emit, progressLine, table, UsageError, type Out } from "./output.js";

/** `qrfleet instance webhooks --plan | --apply`: the provider's state webhook of every enabled instance. */

/**
 * A fleet of 10,000 read at QRFLEET_SETTINGS_CONCURRENCY calls at a time, set, and read back
 * after the reboot wait: an hour is far past it, yet a hung command still ends.
 */
const WEBHOOKS_BOUND_MS = 3_600_000;

const STEP_WORDS: Record<WebhookProgress["step"], string> = { read: "read", set: "set", verified: "read back" };

function setupCell(r: WebhookRow): string {
  return r.setup === "foreign" ? `foreign (${r.host ?? "?"})` : r.setup;
}

export function describeWebhooks(r: WebhookReport): string {
  const rows = r.instances.map((i) => [i.idInstance, dash(i.label), setupCell(i), ...(r.apply ? [dash(i.result)] : []), i.error ? i.error.message : ""]);
  const header = ["idInstance", "label", "webhook", ...(r.apply ? ["result"] : []), "detail"];
  const t = r.totals;
  const lines = [
    `${r.apply ? "applied" : "plan (nothing changed)"}: the state webhook of each enabled instance, ours being ${r.hookUrl}`,
    table(header, rows, "no enabled instances"),
    `${t.instances} instances: ${t.unset} unset, ${t.ours} ours, ${t.ours_incomplete} ours_incomplete, ${t.foreign} foreign, ${t.error} errors`,
  ];
  if (r.apply) {
    lines.push(
      `applied ${t.applied}, not_applied ${t.not_applied}, refused ${t.refused}, failed ${t.failed}, ` +
        `skipped_session ${t.skipped_session}, skipped_foreign ${t.skipped_foreign}, unchanged ${t.unchanged}`,
    );
  } else if (t.unset + t.ours_incomplete > 0) {
    lines.push(`--apply would set ours on the ${t.unset + t.ours_incomplete} unset or ours_incomplete (each reboots; none with a session open)`);
  }
  if (t.foreign > 0) lines.push(`foreign webhooks are never changed: their receiver can forward stateInstanceChanged to ${r.hookUrl} (see README)`);
  return lines.join("\n");
}

export function webhooksCommand(): Command {
  return new Command("webhooks")
    .description("read (--plan) or set up (--apply) every enabled instance's provider webhook toward this fleet")
    .addOption(new Option("--plan", "read each instance's settings and say what --apply would do; change nothing").conflicts("apply"))
    .addOption(new Option("--apply", "set ours where no webhook is set or ours is incomplete, then read it back"))
    .option("--json", "print JSON")
    .addHelpText(
      "after",
      "\nsetSettings reboots the instance: --apply skips instances with a session open and never touches another\n" +
        "receiver's webhook. Exit code 1 when a reading or a change failed or did not stick.",
    )
    .action(async (o: Out & { plan?: boolean; apply?: boolean }) => {
      if (!o.plan && !o.apply) throw new UsageError("say what to do: --plan reads every instance's settings, --apply sets ours up");
      const line = progressLine();
      const report = await untilStopped((signal) =>
        withFleet(
          (ctx) => reviewWebhooks(ctx, { apply: o.apply === true, signal, onProgress: (p) => line.draw(`qrfleet: ${STEP_WORDS[p.step]} ${p.done} of ${p.total}`) }),
          { boundMs: WEBHOOKS_BOUND_MS, waitingFor: "the provider's settings to be read" },
        ),
      ).finally(line.end);
      emit(o, report, describeWebhooks);
      if (report.failed) process.exitCode = EXIT.failed;
    });
}
