import type { Job } from "bullmq";
import type { FleetContext } from "../src/fleet/context.js";
import { checkSettings, type CheckResult } from "../src/fleet/instances/settings-watch.js";
import type { SettingsJob } from "../src/queues.js";

/** The settings queue's processor: one read of an instance's webhook settings after a re-link. */
export function createSettingsProcessor(ctx: FleetContext) {
  return (job: Job<SettingsJob>): Promise<CheckResult> => checkSettings(ctx, job.data);
}
