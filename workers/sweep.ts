import type { Job } from "bullmq";
import type { FleetContext } from "../src/fleet/context.js";
import { applyRetention } from "../src/fleet/upkeep/retention.js";
import { reauthInstance, sweepFleet } from "../src/fleet/triggers/sweep.js";
import type { SweepJob } from "../src/queues.js";

/** The sweep queue's processor: the start-up sweep, per-instance cron re-auth, retention. */
export function createSweepProcessor(ctx: FleetContext) {
  return async (job: Job<SweepJob>, _token?: string, signal?: AbortSignal): Promise<unknown> => {
    const data = job.data;
    if (data.kind === "slice") return { skipped: "slots are claimed, not queued, now" };
    if (data.kind === "sweep") return sweepFleet(ctx, signal, { staleOnly: data.staleOnly });
    if (data.kind === "reauth") return reauthInstance(ctx, data.instanceId, signal);
    return applyRetention(ctx);
  };
}
