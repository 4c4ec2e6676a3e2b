import { Command } from "commander";
import { enableChannel } from "../fleet/operators/deliveries.js";
import { resolveInstance } from "../fleet/instances/instances.js";
import {
  CHANNEL_MODES, MAX_TIER, addChannel, addOperator, assign, getOperator, listOperators, removeOperator, setChannelMode, unassign,
  type AddedChannel, type AddedOperator, type Assignment, type ChannelInput, type ChannelView, type OperatorView,
} from "../fleet/operators/operators.js";
import { withFleet } from "./context.js";
import { emit, fields, intArg, table, UsageError, when, type Out } from "./output.js";

interface AddOpts extends Out {
  name: string;
  email?: string;
  webhook?: string;
  webhookSecret?: string;
}

const modeText = (c: ChannelView) => (c.modeSet ? c.mode : `${c.mode} (default)`);
const channelText = (o: OperatorView) =>
  o.channels
    .map((c) => `${c.kind} ${c.address} ${modeText(c)}${c.enabled ? "" : ` (disabled${c.disabledReason ? `: ${c.disabledReason}` : ""})`}`)
    .join(", ") || "-";

export function describeOperator(o: OperatorView): string {
  const assignments = o.assignments.map((a) => `  instance ${a.instanceId} tier ${a.tier}`);
  return [
    fields([
      ["operator", o.name],
      ["id", o.id],
      ["channels", channelText(o)],
      ["channel ids", o.channels.map((c) => `${c.kind} ${c.id}`).join(", ") || "-"],
      ["created", when(o.createdAt)],
      ["instances", String(o.assignments.length)],
    ]),
    ...assignments,
  ].join("\n");
}

function operatorTable(list: OperatorView[]): string {
  const rows = list.map((o) => [o.id, o.name, channelText(o), String(o.assignments.length)]);
  return table(["id", "name", "channels", "instances"], rows, "no operators");
}

/** The generated secret exists in plain text only in this output: say so, once. */
function withSecret(first: string, webhookSecret: string | null, generated: boolean): string {
  if (!webhookSecret || !generated) return first;
  return [first, `webhook signing secret: ${webhookSecret}`, "store it now in the receiver's configuration: it is kept encrypted and never shown again"].join("\n");
}

function describeAdded(added: AddedOperator, generated: boolean): string {
  return withSecret(`added operator ${added.operator.name} (${added.operator.id})`, added.webhookSecret, generated);
}

function addCommand(): Command {
  return new Command("add")
    .description("add an operator who receives the QR of assigned instances, by email and/or signed webhook")
    .requiredOption("--name <name>", "a unique name")
    .option("--email <address>", "send the QR link to this address")
    .option("--webhook <url>", "POST QR and outcome events here (Standard Webhooks)")
    .option("--webhook-secret <whsec>", "the signing secret to use (whsec_…); generated and printed once when omitted")
    .option("--json", "print JSON")
    .action(async (o: AddOpts) => {
      const input = { name: o.name, email: o.email, webhook: o.webhook, webhookSecret: o.webhookSecret };
      const added = await withFleet((ctx) => addOperator(ctx, input));
      emit(o, added, (a) => describeAdded(a, o.webhookSecret === undefined));
    });
}

interface ChannelOpts extends Out {
  email?: string;
  webhook?: string;
  webhookSecret?: string;
}

function channelInput(o: ChannelOpts): ChannelInput {
  if ((o.email === undefined) === (o.webhook === undefined)) throw new UsageError("give exactly one of --email and --webhook");
  return o.email !== undefined ? { kind: "email", address: o.email } : { kind: "webhook", address: o.webhook!, secret: o.webhookSecret };
}

function describeChannel(added: AddedChannel, operator: string, generated: boolean): string {
  return withSecret(`added ${added.channel.kind} ${added.channel.address} to operator ${operator}`, added.webhookSecret, generated);
}

function addChannelCommand(): Command {
  return new Command("add-channel")
    .description("give an existing operator another email address or webhook endpoint")
    .argument("<operator>", "operator id or name")
    .option("--email <address>", "send the QR link to this address")
    .option("--webhook <url>", "POST QR and outcome events here (Standard Webhooks)")
    .option("--webhook-secret <whsec>", "the signing secret to use (whsec_…); generated and printed once when omitted")
    .option("--json", "print JSON")
    .action(async (operator: string, o: ChannelOpts) => {
      const input = channelInput(o);
      const added = await withFleet((ctx) => addChannel(ctx, operator, input));
      emit(o, added, (a) => describeChannel(a, operator, o.webhookSecret === undefined));
    });
}

function enableChannelCommand(): Command {
  return new Command("enable-channel")
    .description("enable a channel that was disabled (410 Gone, failing too long): it gets new events again")
    .argument("<channel>", "the channel's id (qrfleet operator show lists them)")
    .option("--json", "print JSON")
    .action(async (channel: string, o: Out) => {
      const done = await withFleet((ctx) => enableChannel(ctx, channel));
      emit(o, done, (r) => (r.wasDisabled ? `enabled channel ${r.id}` : `channel ${r.id} was enabled already`));
    });
}

function channelModeCommand(): Command {
  return new Command("channel-mode")
    .description("send a channel each event at once (immediate) or grouped into digests; default: digest for a fleet-wide operator's email, else immediate")
    .argument("<channel>", "the channel's id (qrfleet operator show lists them)")
    .argument("<mode>", CHANNEL_MODES.join(" | "))
    .option("--json", "print JSON")
    .action(async (channel: string, mode: string, o: Out) => {
      const view = await withFleet((ctx) => setChannelMode(ctx, channel, mode));
      emit(o, view, (c) => `channel ${c.id} (${c.kind} ${c.address}): ${modeText(c)}`);
    });
}

function listCommand(): Command {
  return new Command("list")
    .description("list operators")
    .option("--json", "print JSON")
    .action(async (o: Out) => emit(o, await withFleet((ctx) => listOperators(ctx)), operatorTable));
}

function showCommand(): Command {
  return new Command("show")
    .description("show an operator with channels and assigned instances")
    .argument("<ref>", "the operator's id or name")
    .option("--json", "print JSON")
    .action(async (ref: string, o: Out) => emit(o, await withFleet((ctx) => getOperator(ctx, ref)), describeOperator));
}

function removeCommand(): Command {
  return new Command("remove")
    .description("remove an operator with channels and assignments")
    .argument("<ref>", "the operator's id or name")
    .option("--json", "print JSON")
    .action(async (ref: string, o: Out) => {
      emit(o, await withFleet((ctx) => removeOperator(ctx, ref)), (v) => `removed operator ${v.name} (${v.id})`);
    });
}

/** Names the instance and the operator as the user did, not by their ids. */
const assignmentText = (verb: "assigned" | "unassigned", instance: string, operator: string) => (a: Assignment) =>
  `${verb} instance ${instance} ${verb === "assigned" ? "to" : "from"} operator ${operator} (tier ${a.tier})`;

function assignCommand(): Command {
  return new Command("assign")
    .description("send an instance's QR to an operator; assigning again changes the tier")
    .argument("<instance>", "the instance's id or idInstance")
    .argument("<operator>", "the operator's id or name")
    .option("--tier <n>", `escalation tier: 1 hears first, higher tiers after unscanned attempts (1-${MAX_TIER})`, intArg(1, MAX_TIER), 1)
    .option("--json", "print JSON")
    .action(async (instance: string, operator: string, o: Out & { tier: number }) => {
      const a = await withFleet(async (ctx) => assign(ctx, (await resolveInstance(ctx.db, instance)).id, operator, o.tier));
      emit(o, a, assignmentText("assigned", instance, operator));
    });
}

function unassignCommand(): Command {
  return new Command("unassign")
    .description("stop sending an instance's QR to an operator")
    .argument("<instance>", "the instance's id or idInstance")
    .argument("<operator>", "the operator's id or name")
    .option("--json", "print JSON")
    .action(async (instance: string, operator: string, o: Out) => {
      const a = await withFleet(async (ctx) => unassign(ctx, (await resolveInstance(ctx.db, instance)).id, operator));
      emit(o, a, assignmentText("unassigned", instance, operator));
    });
}

export function operatorCommands(): Command[] {
  const operator = new Command("operator")
    .description("add, list, show and remove operators; enable their channels again, set how they get events")
    .addCommand(addCommand())
    .addCommand(addChannelCommand())
    .addCommand(enableChannelCommand())
    .addCommand(channelModeCommand())
    .addCommand(listCommand())
    .addCommand(showCommand())
    .addCommand(removeCommand());
  return [operator, assignCommand(), unassignCommand()];
}
