import { randomUUID } from "node:crypto";
import { DelayedError, type Job } from "bullmq";
import { claimAttempt, finishAttempt, handBack, recordQr, type Claim } from "../src/fleet/attempts.js";
import type { FleetContext } from "../src/fleet/context.js";
import { instanceToken } from "../src/fleet/instances.js";
import { createGreenApiClient } from "../src/greenapi/rest.js";
import { runRestQrSession } from "../src/greenapi/rest-session.js";
import { runQrSession, type QrSessionOptions } from "../src/greenapi/session.js";
import { connectorFor } from "../src/greenapi/socket.js";
import type { InstanceAddress, SessionOutcome } from "../src/greenapi/types.js";
import { addNotifyJobs, addSessionJob, type SessionJob } from "../src/queues.js";

/** Why a run's signal was aborted; anything else is a cancel from an admin or the provider. */
export const ABORT = { shutdown: "worker shutting down", lockLost: "job lock lost" } as const;

export interface SessionWorkerDeps {
  ctx: FleetContext;
  workerName: string;
}

/** The BullMQ processor for the qr-session queue: one job = one attempt of one session. */
export function createSessionProcessor({ ctx, workerName }: SessionWorkerDeps) {
  return async (job: Job<SessionJob>, token?: string, signal?: AbortSignal): Promise<string> => {
    const claim = await claimAttempt(ctx, job.data, randomUUID(), workerName);
    if (!claim) return "stale"; // the session ended or moved on to another attempt: nothing to do
    ctx.events.emit("session:transition", {
      sessionId: claim.session.id, instanceId: claim.instance.id, from: claim.resumed ? "running" : "queued", to: "running",
      attempt: claim.session.attempt, reason: claim.resumed ? "resumed" : undefined,
    });
    const addr = addressOf(ctx, claim);
    if (!addr) return finish(ctx, claim, null, UNREADABLE_TOKEN);
    const run = new AbortController();
    const forward = () => run.abort(signal?.reason);
    signal?.addEventListener("abort", forward, { once: true });
    let outcome: SessionOutcome;
    try {
      outcome = await runSession(ctx, claim, addr, {
        onQr: async (qr) => {
          const r = await recordQr(ctx, claim, qr);
          if (r.stale) return run.abort("the session was ended or taken over elsewhere");
          if (r.duplicate) return;
          ctx.events.emit("session:qr", { sessionId: claim.session.id, instanceId: claim.instance.id, attempt: claim.session.attempt, sequence: r.sequence });
          await addNotifyJobs(ctx.queues, r.deliveryIds);
        },
        onNotice: (n) => ctx.events.emit("session:notice", { sessionId: claim.session.id, kind: n.kind, detail: "type" in n ? n.type : "reason" in n ? n.reason : undefined }),
        signal: run.signal,
      });
    } catch (err) {
      // Persisting failed (PostgreSQL away?): give the attempt back and let BullMQ retry the job.
      await handBack(ctx, claim).catch(() => false);
      throw err;
    } finally {
      signal?.removeEventListener("abort", forward);
    }
    if (outcome.kind === "cancelled" && (outcome.reason === ABORT.shutdown || outcome.reason === ABORT.lockLost)) {
      return handBackJob(ctx, claim, job, token, outcome.reason);
    }
    return finish(ctx, claim, addr, outcome);
  };
}

type SessionHooks = Pick<QrSessionOptions, "onQr" | "onNotice" | "signal">;

/** One attempt over the instance's QR transport: the websocket, or REST polling when it was chosen. */
function runSession(ctx: FleetContext, claim: Claim, addr: InstanceAddress, hooks: SessionHooks): Promise<SessionOutcome> {
  const timeoutMs = ctx.config.QRFLEET_HTTP_TIMEOUT_MS;
  const bounds = { silenceMs: ctx.config.QRFLEET_SILENCE_MS, maxMs: ctx.config.QRFLEET_ATTEMPT_MAX_MS };
  if (claim.instance.qrTransport === "rest") {
    // REST answers carry no scan window: the configured one bounds a run as the provider's bounds a socket.
    const client = createGreenApiClient(addr, { timeoutMs });
    return runRestQrSession({ client, windowMs: ctx.config.QRFLEET_SCAN_WINDOW_MS, ...bounds, ...hooks });
  }
  return runQrSession({ connect: connectorFor(addr, { timeoutMs }), ...bounds, ...hooks });
}

/** A token sealed under another key cannot be used; retrying will not help, a human must set it again. */
const UNREADABLE_TOKEN: SessionOutcome = {
  kind: "failed",
  reason: "invalid_token",
  message: "the stored token cannot be decrypted (was QRFLEET_SECRET_KEY changed?): set it again with qrfleet instance update --token",
};

function addressOf(ctx: FleetContext, claim: Claim): InstanceAddress | null {
  try {
    return { apiUrl: claim.instance.apiUrl, idInstance: claim.instance.idInstance, token: instanceToken(ctx, claim.instance) };
  } catch {
    return null;
  }
}

async function handBackJob(ctx: FleetContext, claim: Claim, job: Job<SessionJob>, token: string | undefined, reason: string): Promise<string> {
  await handBack(ctx, claim);
  ctx.events.emit("session:transition", {
    sessionId: claim.session.id, instanceId: claim.instance.id, from: "running", to: "queued", attempt: claim.session.attempt, reason,
  });
  if (reason === ABORT.lockLost) return "handed back"; // the lock is gone; the stalled-job check re-queues it
  // Back to the queue without counting a job attempt: the next worker (maybe in the next daemon) resumes it.
  await job.moveToDelayed(Date.now(), token);
  throw new DelayedError();
}

async function finish(ctx: FleetContext, claim: Claim, addr: InstanceAddress | null, outcome: SessionOutcome): Promise<string> {
  const result = await finishAttempt(ctx, claim, outcome);
  if (result.stale) return "stale";
  const { session, instance } = claim;
  ctx.events.emit("session:transition", {
    sessionId: session.id, instanceId: instance.id, from: "running", to: result.status, attempt: session.attempt,
    reason: outcome.kind === "failed" ? outcome.reason : outcome.kind, nextAttemptInMs: result.next?.delayMs,
  });
  if (result.next) await addSessionJob(ctx.queues, { sessionId: session.id, attempt: result.next.attempt }, result.next.delayMs);
  await addNotifyJobs(ctx.queues, result.deliveryIds);
  if (addr && (result.status === "authorized" || result.status === "wrong_number")) await afterScan(ctx, claim, addr, result.status);
  return result.status;
}

/** Confirms a scan with getStateInstance, and logs a wrong number out when configured to. */
async function afterScan(ctx: FleetContext, claim: Claim, addr: InstanceAddress, status: string): Promise<void> {
  const client = createGreenApiClient(addr, { timeoutMs: ctx.config.QRFLEET_HTTP_TIMEOUT_MS });
  try {
    if (status === "wrong_number" && ctx.config.QRFLEET_LOGOUT_ON_WRONG_NUMBER) {
      await client.logout();
      ctx.log.warn({ instanceId: claim.instance.id }, "wrong number scanned: instance logged out");
    }
    const { state } = await client.getStateInstance();
    await ctx.db.instance.update({
      where: { id: claim.instance.id },
      data: { lastState: state, lastStateAt: new Date(), ...(state === "authorized" && { unlinkedSince: null }) },
    });
    ctx.events.emit("instance:state", { instanceId: claim.instance.id, state });
  } catch (err) {
    ctx.log.warn({ err, instanceId: claim.instance.id }, "could not confirm the instance state after the scan");
  }
}
