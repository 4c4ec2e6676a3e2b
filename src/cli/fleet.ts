import { Command } from "commander";
import { DELIVERY_STATUSES, listDeliveries, type DeliveryView } from "../fleet/operators/deliveries.js";
import { duration } from "../lib/duration.js";
import { fleetStatus, type FleetStatus } from "../fleet/observe/status.js";
import { withFleet } from "./context.js";
import { retryCommand } from "./deliveries.js";
import { dash, emit, intArg, table, when, type Out } from "./output.js";

const counts = (record: Record<string, number>) =>
  Object.entries(record)
    .filter(([, n]) => n > 0)
    .map(([k, n]) => `${k} ${n}`)
    .join(", ") || "none";

/** The same numbers as GET /api/status, one per aligned row. */
export function describeStatus(s: FleetStatus): string {
  const i = s.instances;
  const rows: string[][] = [
    ["instances", String(i.total), `${i.enabled} enabled`],
    ...Object.entries(i.byState).sort(([a], [b]) => a.localeCompare(b)).map(([state, n]) => [`  ${state}`, String(n), ""]),
    ["attention", String(i.attention), "need a human (e.g. token refused)"],
    ["longest unlinked", duration(i.longestUnlinkedSeconds), "enabled instances"],
    ["alerts open", String(s.alertsOpen), ""],
    ["channels failing", String(s.channels.failing), `${s.channels.disabled} disabled`],
    ["sessions running", String(s.sessions.running), ""],
    ["sessions queued", String(s.sessions.queued), ""],
  ];
  const lines = [table(["", "count", "note"], rows, "")];
  if (s.queues) {
    lines.push("", table(["queue", "jobs"], Object.entries(s.queues).map(([name, c]) => [name, counts(c)]), ""));
  } else {
    lines.push("", `queues: unknown (${s.queuesError ?? "Redis is unavailable"})`);
  }
  return lines.join("\n");
}

function deliveryTable(list: DeliveryView[]): string {
  const rows = list.map((d) => [
    when(d.createdAt), d.eventType, `${d.channelKind} ${d.address}`, d.status, String(d.tries),
    d.responseStatus === null ? "-" : String(d.responseStatus),
    d.status === "sent" ? when(d.sentAt) : d.status === "pending" ? `next ${when(d.nextTryAt)}` : "-",
    dash(d.lastError),
  ]);
  return table(["created", "event", "to", "status", "tries", "HTTP", "sent / next", "last error"], rows, "no deliveries");
}

function statusCommand(): Command {
  return new Command("status")
    .description("the fleet at a glance: instances by state, attention, alerts, failing channels, sessions, queue depths")
    .option("--json", "print JSON")
    .action(async (o: Out) => emit(o, await withFleet((ctx) => fleetStatus(ctx)), describeStatus));
}

function deliveriesCommand(): Command {
  return new Command("deliveries")
    .description("what was sent to which operator channel, when, and why it failed")
    .option("--session <id>", "only deliveries of this session's events")
    .option("--status <status>", `only deliveries in this status: ${DELIVERY_STATUSES.join(", ")}`)
    .option("--limit <n>", "at most this many, newest first", intArg(1, 10_000), 50)
    .option("--json", "print JSON")
    .action(async (o: Out & { session?: string; status?: string; limit: number }) => {
      const filter = { session: o.session, status: o.status as DeliveryView["status"] | undefined, limit: o.limit };
      emit(o, await withFleet((ctx) => listDeliveries(ctx, filter)), deliveryTable);
    })
    .addCommand(retryCommand());
}

export function fleetCommands(): Command[] {
  return [statusCommand(), deliveriesCommand()];
}
