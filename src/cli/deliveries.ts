import { Command } from "commander";
import { retryDelivery, retryFailedDeliveries, type ReplayView } from "../fleet/operators/deliveries.js";
import { withFleet } from "./context.js";
import { emit, UsageError, type Out } from "./output.js";

interface RetryOpts extends Out {
  failed?: boolean;
  channel?: string;
  since?: string;
}

function describeReplay(r: ReplayView): string {
  if (r.replayed.length === 0) return "nothing to replay";
  const more = r.more ? " (more match: run it again)" : "";
  return `replayed ${r.replayed.length} ${r.replayed.length === 1 ? "delivery" : "deliveries"}${more}; each keeps its webhook-id`;
}

/** `qrfleet deliveries retry ID | --failed [--channel X] [--since T]`: replays by hand. */
export function retryCommand(): Command {
  return new Command("retry")
    .description("send deliveries again by hand, tries reset, with the same webhook-id (receivers deduplicate)")
    .argument("[id]", "the delivery to send again (not while it is pending)")
    .option("--failed", "every failed delivery of an enabled channel instead")
    .option("--channel <id>", "with --failed: only this channel's")
    .option("--since <time>", "with --failed: only deliveries created since this time (ISO 8601, e.g. 2026-12-01T00:00:00Z)")
    .option("--json", "print JSON")
    .action(async (id: string | undefined, opts: RetryOpts, command: Command) => {
      // `deliveries` has a --json of its own, which commander gives the parent wherever it appears.
      const o: RetryOpts = { ...opts, json: (command.optsWithGlobals() as { json?: boolean }).json === true };
      if ((id === undefined) === !o.failed) throw new UsageError("give a delivery id or --failed");
      if (id !== undefined && (o.channel !== undefined || o.since !== undefined)) throw new UsageError("--channel and --since go with --failed");
      const replay = await withFleet((ctx) =>
        id !== undefined ? retryDelivery(ctx, id) : retryFailedDeliveries(ctx, { channel: o.channel, since: o.since }),
      );
      emit(o, replay, describeReplay);
    });
}
