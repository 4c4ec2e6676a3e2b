import type { Job } from "bullmq";
import type { FleetContext } from "../src/fleet/context.js";
import { applyRetention } from "../src/fleet/retention.js";
import { sweepSlot } from "../src/fleet/sweep-slices.js";
import { reauthInstance, sweepFleet } from "../src/fleet/sweep.js";
import type { SweepJob } from "../src/queues.js";

/** The sweep queue's processor: the sweep's slices, the start-up sweep, per-instance cron re-auth, retention. */
export function createSweepProcessor(ctx: FleetContext) {
  return async (job: Job<SweepJob>, _token?: string, signal?: AbortSignal): Promise<unknown> => {
    const data = job.data;
    if (data.kind === "slice") return sweepSlot(ctx, job.opts.prevMillis ?? job.timestamp, signal);
    if (data.kind === "sweep") return sweepFleet(ctx, signal, { staleOnly: data.staleOnly });
    if (data.kind === "reauth") return reauthInstance(ctx, data.instanceId, signal);
    return applyRetention(ctx);
  };
}
