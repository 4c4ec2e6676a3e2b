import { open, type FileHandle } from "node:fs/promises";
import { Command, Option } from "commander";
import { showInstanceWithAlerts, type AlertView } from "../fleet/instances/alert-list.js";
import { importInstances, type ImportProgress } from "../fleet/instances/import.js";
import { QR_TRANSPORTS } from "../fleet/instances/instance-input.js";
import {
  addInstance, listInstances, removeInstance, updateInstance, type InstanceView,
} from "../fleet/instances/instances.js";
import { untilStopped, withFleet } from "./context.js";
import { syncCommand } from "./partner-sync.js";
import { webhooksCommand } from "./webhooks.js";
import { dash, emit, fields, intArg, progressLine, secretArg, table, UsageError, when, type Out } from "./output.js";

interface InstanceOpts extends Out {
  apiUrl?: string;
  id?: string;
  token?: string;
  label?: string;
  phone?: string;
  cron?: string;
  webhookToken?: string;
  maxAttempts?: number;
  enable?: boolean;
  disable?: boolean;
  clearAttention?: boolean;
  qrTransport?: string;
  restoreSettings?: string;
}

const withoutUndefined = (o: Record<string, unknown>) =>
  Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));

/** Options shared by `add` and `update`; `add` makes the address ones mandatory. */
function addressOptions(cmd: Command, required: boolean): Command {
  const opt = (flags: string, text: string) => (required ? cmd.requiredOption(flags, text) : cmd.option(flags, text));
  opt("--api-url <url>", "the instance's apiUrl, e.g. https://7103.api.greenapi.com");
  if (required) opt("--id <idInstance>", "the instance's idInstance (digits)");
  return opt("--token <token>", "the instance's apiTokenInstance (stored encrypted, never shown); - reads it from stdin");
}

function detailOptions(cmd: Command, clearable: boolean): Command {
  const clear = clearable ? "; an empty value clears it" : "";
  return cmd
    .option("--label <text>", `a name people recognise${clear}`)
    .option("--phone <number>", `the phone number that should own it, international digits${clear}`)
    .option("--cron <expr>", `its own re-auth schedule, UTC, e.g. "0 */6 * * *"${clear}`)
    .option("--webhook-token <token>", `the bearer token of its inbound provider webhooks${clear}`)
    .option("--max-attempts <n>", "attempts of one session before it ends timed_out", intArg(1, 100))
    .addOption(
      new Option("--qr-transport <transport>", "how its sessions get QR codes: the websocket, or polling the REST qr call (a fallback)")
        .choices(QR_TRANSPORTS),
    )
    .option("--json", "print JSON");
}

function newInstanceInput(o: InstanceOpts): Record<string, unknown> {
  return withoutUndefined({
    apiUrl: o.apiUrl, idInstance: o.id, token: o.token, label: o.label, phone: o.phone,
    cron: o.cron, webhookToken: o.webhookToken, maxAttempts: o.maxAttempts, qrTransport: o.qrTransport,
  });
}

const orNull = (v: string | undefined) => (v === undefined ? undefined : v.trim() === "" ? null : v);

function updateInput(o: InstanceOpts): Record<string, unknown> {
  const input = withoutUndefined({
    apiUrl: o.apiUrl, token: o.token, label: orNull(o.label), phone: orNull(o.phone), cron: orNull(o.cron),
    webhookToken: orNull(o.webhookToken), maxAttempts: o.maxAttempts, qrTransport: o.qrTransport,
    enabled: o.enable ? true : o.disable ? false : undefined,
    restoreSettings: o.restoreSettings === undefined ? undefined : o.restoreSettings === "yes",
    clearAttention: o.clearAttention || undefined,
  });
  if (Object.keys(input).length === 0) throw new UsageError("nothing to update: give at least one option (see --help)");
  return input;
}

export function describeInstance(v: InstanceView & { alerts?: AlertView[] }): string {
  const last = v.lastSession;
  return fields([
    ["id", v.id],
    ["idInstance", v.idInstance],
    ["apiUrl", v.apiUrl],
    ["label", dash(v.label)],
    ["enabled", v.enabled ? "yes" : "no"],
    ["state", `${dash(v.lastState)} (seen ${when(v.lastStateAt)})`],
    ["unlinked since", when(v.unlinkedSince)],
    ["attention", dash(v.attention)],
    ["expected phone", dash(v.expectedPhone)],
    ["cron", dash(v.cron)],
    ["max attempts", dash(v.maxAttempts)],
    ["webhook token", v.hasWebhookToken ? "set" : "-"],
    ["qr transport", v.qrTransport],
    ["webhook setup", v.webhookSetup ? `${v.webhookSetup} (read ${when(v.settingsCheckedAt)})` : "-"],
    ["restore settings", v.restoreSettings ? "yes" : "no"],
    ["last session", last ? `${last.id} ${last.status} (attempt ${last.attempt}, ended ${when(last.endedAt)})` : "-"],
    ["created", when(v.createdAt)],
    ...(v.alerts ?? []).map((a): [string, string] => ["alert", describeAlert(a)]),
  ]);
}

function describeAlert(a: AlertView): string {
  const reboot = a.rebootedAt ? `, rebooted ${when(a.rebootedAt)}` : "";
  const deadline = a.deadline ? `, unlinks around ${when(a.deadline)}` : "";
  return `${a.state} since ${when(a.since)} (told ${when(a.alertedAt)}${reboot}${deadline})`;
}

function instanceTable(list: InstanceView[]): string {
  const rows = list.map((v) => [
    v.id, v.idInstance, dash(v.label), `${dash(v.lastState)}${v.enabled ? "" : " (disabled)"}${v.attention ? ` !${v.attention}` : ""}`,
    dash(v.lastSession?.status), when(v.unlinkedSince),
  ]);
  return table(["id", "idInstance", "label", "state", "last outcome", "unlinked since"], rows, "no instances");
}

function addCommand(): Command {
  const cmd = new Command("add").description("add an instance to the fleet");
  detailOptions(addressOptions(cmd, true), false);
  return cmd.action(async (o: InstanceOpts) => {
    o.token = await secretArg(o.token);
    const view = await withFleet((ctx) => addInstance(ctx, newInstanceInput(o)));
    emit(o, view, (v) => `added instance ${v.idInstance} as ${v.id}`);
  });
}

function listCommand(): Command {
  return new Command("list")
    .description("list the fleet's instances")
    .option("--state <state>", "only instances last seen in this state, e.g. notAuthorized")
    .option("--attention", "only instances that need a human (bad token, wrong number)")
    .option("--json", "print JSON")
    .action(async (o: Out & { state?: string; attention?: boolean }) => {
      const list = await withFleet((ctx) => listInstances(ctx, { state: o.state, attention: o.attention }));
      emit(o, list, instanceTable);
    });
}

function showCommand(): Command {
  return new Command("show")
    .description("show one instance")
    .argument("<ref>", "the instance's id or idInstance")
    .option("--json", "print JSON")
    .action(async (ref: string, o: Out) => emit(o, await withFleet((ctx) => showInstanceWithAlerts(ctx, ref)), describeInstance));
}

function updateCommand(): Command {
  const cmd = new Command("update").description("change an instance").argument("<ref>", "the instance's id or idInstance");
  detailOptions(addressOptions(cmd, false), true)
    .addOption(new Option("--enable", "let sweeps and schedules start sessions for it").conflicts("disable"))
    .addOption(new Option("--disable", "keep it, but start no sessions for it automatically"))
    .option("--clear-attention", "mark the problem that needed a human as handled")
    .addOption(
      new Option("--restore-settings <yes|no>", "set its provider webhook settings back when a re-link changed them, if they were qrfleet's")
        .choices(["yes", "no"]),
    );
  return cmd.action(async (ref: string, o: InstanceOpts) => {
    o.token = await secretArg(o.token);
    const input = updateInput(o);
    emit(o, await withFleet((ctx) => updateInstance(ctx, ref, input)), (v) => `updated instance ${v.idInstance}\n${describeInstance(v)}`);
  });
}

function removeCommand(): Command {
  return new Command("remove")
    .description("remove an instance with its sessions and QR images")
    .argument("<ref>", "the instance's id or idInstance")
    .option("--json", "print JSON")
    .action(async (ref: string, o: Out) => {
      emit(o, await withFleet((ctx) => removeInstance(ctx, ref)), (v) => `removed instance ${v.idInstance} (${v.id})`);
    });
}

/** 100,000 rows take seconds; the largest file allowed (1,000,000 rows) a few minutes. */
const IMPORT_BOUND_MS = 1_800_000;

/** Opened before the fleet is, so a wrong path is a usage error, not a half-started import. */
async function openImportFile(file: string): Promise<FileHandle> {
  try {
    return await open(file, "r");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new UsageError(`cannot read ${file}: ${code === "ENOENT" ? "no such file" : (code ?? "unreadable")}`);
  }
}

const importProgressText = (p: ImportProgress) =>
  p.step === "checked" ? `qrfleet: ${p.rows} rows read and checked` : `qrfleet: ${p.rows} rows checked; writing them`;

function importCommand(): Command {
  return new Command("import")
    .description("add many instances from a CSV (with a header row) or JSON file: all of them, or none")
    .argument("<file>", "columns/keys: apiUrl, idInstance, token, label, phone, cron, maxAttempts, webhookToken, enabled, qrTransport")
    .option("--json", "print JSON")
    .addHelpText("after", "\nThe file is read as a stream: up to 1,000,000 rows. When a row is bad nothing is imported,\nand the first 100 bad rows are named with the count of all of them.")
    .action(async (file: string, o: Out) => {
      const handle = await openImportFile(file);
      const progress = progressLine();
      // On a terminal only: a log or a pipe would get a line per 2,000 rows.
      const onProgress = process.stderr.isTTY ? (p: ImportProgress) => progress.draw(importProgressText(p)) : undefined;
      const result = await untilStopped((signal) =>
        withFleet(
          (ctx) => importInstances(ctx, handle.createReadStream(), { signal, onProgress }),
          { boundMs: IMPORT_BOUND_MS, waitingFor: "the import to finish" },
        ),
      ).finally(async () => {
        progress.end();
        await handle.close();
      });
      emit(o, result, (r) => `imported ${r.created} instance${r.created === 1 ? "" : "s"}`);
    });
}

export function instanceCommand(): Command {
  return new Command("instance")
    .description("add, list, show, change, remove, import and sync instances; set up their provider webhooks")
    .addCommand(addCommand())
    .addCommand(listCommand())
    .addCommand(showCommand())
    .addCommand(updateCommand())
    .addCommand(removeCommand())
    .addCommand(importCommand())
    .addCommand(syncCommand())
    .addCommand(webhooksCommand());
}
