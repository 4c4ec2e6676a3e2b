import { DelayedError, type Job } from "bullmq";
import type { FleetContext } from "../src/fleet/context.js";
import type { SessionPipeline } from "../src/fleet/sessions/qr-intake.js";
import { ABORT, runAttempt } from "../src/fleet/sessions/session-run.js";
import { sessionJobId, type SessionJob } from "../src/queues.js";

export { ABORT };

export interface SessionWorkerDeps {
  ctx: FleetContext;
  pipeline: SessionPipeline;
}

/**
 * The attempts this process runs, by job id. BullMQ keeps one lock per job id per worker: a
 * second copy of a job that is running here (Redis lost the first and it was added again, or a
 * stalled check re-queued it) would take over the lock of the run that holds the socket, and each
 * copy's end would drop the other's lock. So a copy ends at once and the run already here goes
 * on; stopping runs goes through this registry, which a copy never replaces.
 */
export class SessionRuns {
  private readonly runs = new Map<string, AbortController>();

  has(jobId: string): boolean {
    return this.runs.has(jobId);
  }

  /** Whether this process is running the session's attempt (the reconciler leaves those alone). */
  runsHere = (sessionId: string, attempt: number): boolean => this.runs.has(sessionJobId(sessionId, attempt));

  cancel(jobId: string, reason: string): void {
    this.runs.get(jobId)?.abort(reason);
  }

  cancelAll(reason: string): void {
    for (const run of this.runs.values()) run.abort(reason);
  }

  async track<T>(jobId: string, queueSignal: AbortSignal | undefined, work: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const run = new AbortController();
    const forward = () => run.abort(queueSignal?.reason);
    queueSignal?.addEventListener("abort", forward, { once: true });
    this.runs.set(jobId, run);
    try {
      return await work(run.signal);
    } finally {
      queueSignal?.removeEventListener("abort", forward);
      this.runs.delete(jobId);
    }
  }
}

/** The BullMQ processor for the qr-session queue: one job = one attempt of one session. */
export function createSessionProcessor({ ctx, pipeline }: SessionWorkerDeps, runs = new SessionRuns()) {
  return async (job: Job<SessionJob>, token?: string, signal?: AbortSignal): Promise<string> => {
    const jobId = job.id ?? sessionJobId(job.data.sessionId, job.data.attempt);
    if (runs.has(jobId)) return "already running here";
    const run = await runs.track(jobId, signal, (own) => runAttempt(ctx, pipeline, job.data, own));
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
