import { DelayedError, type Job } from "bullmq";
import type { FleetContext } from "../src/fleet/context.js";
import type { SessionPipeline } from "../src/fleet/qr-intake.js";
import { ABORT, runAttempt } from "../src/fleet/session-run.js";
import type { SessionJob } from "../src/queues.js";

export { ABORT };

export interface SessionWorkerDeps {
  ctx: FleetContext;
  pipeline: SessionPipeline;
}

/** The BullMQ processor for the qr-session queue: one job = one attempt of one session. */
export function createSessionProcessor({ ctx, pipeline }: SessionWorkerDeps) {
  return async (job: Job<SessionJob>, token?: string, signal?: AbortSignal): Promise<string> => {
    const run = await runAttempt(ctx, pipeline, job.data, signal);
    if (run.kind === "done") return run.status;
    if (run.kind === "stale") return "stale";
    // A lost lock is re-queued by the stalled-job check; at shutdown the job goes back at once,
    // without counting a job attempt, so the next worker (maybe in the next daemon) resumes it.
    if (run.reason === ABORT.shutdown) {
      await job.moveToDelayed(Date.now(), token);
      throw new DelayedError();
    }
    return "handed back";
  };
}
