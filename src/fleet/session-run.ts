import { randomUUID } from "node:crypto";
import type { SessionStatus } from "../db.js";
import { runRestQrSession } from "../greenapi/rest-session.js";
import { runQrSession, type QrSessionOptions } from "../greenapi/session.js";
import { connectorFor } from "../greenapi/socket.js";
import type { InstanceAddress, SessionOutcome } from "../greenapi/types.js";
import type { Outbound } from "../notify/dispatcher.js";
import type { EventView } from "../notify/types.js";
import { addSessionJob, type SessionJob } from "../queues.js";
import { finishAttempt, type AttemptEnd, type Claim } from "./attempts.js";
import type { FleetContext } from "./context.js";
import { instanceAddress, providerClient, UNREADABLE_TOKEN as UNREADABLE } from "./provider.js";
import { eventParties, QrIntake, type SessionPipeline } from "./qr-intake.js";

/**
 * One attempt of one session, from claim to outcome, and everything that follows from it: the
 * transitions, the next attempt, the outcome's deliveries, the check after a scan. The worker
 * that runs it only glues a queue job to this.
 */

/** Why a run's signal was aborted; anything else is a cancel from an admin or the provider. */
export const ABORT = { shutdown: "worker shutting down", lockLost: "job lock lost" } as const;

export type AttemptRun =
  /** The session ended or moved on before this run: nothing was done. */
  | { kind: "stale" }
  | { kind: "done"; status: SessionStatus }
  /** Given back to the queue (shutdown, lost lock): the next run resumes the attempt. */
  | { kind: "handed_back"; reason: string };

/** Retrying will not help: a human must set the token again. */
const UNREADABLE_TOKEN: SessionOutcome = { kind: "failed", reason: "invalid_token", message: UNREADABLE };

export async function runAttempt(
  ctx: FleetContext,
  pipeline: SessionPipeline,
  job: SessionJob,
  signal?: AbortSignal,
): Promise<AttemptRun> {
  const claim = await pipeline.claims.push({ sessionId: job.sessionId, attempt: job.attempt, runId: randomUUID() });
  if (!claim) return { kind: "stale" };
  ctx.events.emit("session:transition", {
    sessionId: claim.session.id, instanceId: claim.instance.id, from: claim.resumed ? "running" : "queued", to: "running",
    attempt: claim.session.attempt, reason: claim.resumed ? "resumed" : undefined,
  });
  const addr = instanceAddress(ctx, claim.instance);
  if (!addr) return finish(ctx, pipeline, claim, null, UNREADABLE_TOKEN);
  const run = new AbortController();
  const forward = () => run.abort(signal?.reason);
  signal?.addEventListener("abort", forward, { once: true });
  const intake = new QrIntake(ctx, pipeline, claim, (reason) => run.abort(reason));
  let outcome: SessionOutcome;
  try {
    outcome = await runSession(ctx, claim, addr, {
      onQr: intake.onQr,
      onNotice: (n) => ctx.events.emit("session:notice", { sessionId: claim.session.id, kind: n.kind, detail: "type" in n ? n.type : "reason" in n ? n.reason : undefined }),
      signal: run.signal,
    });
  } finally {
    signal?.removeEventListener("abort", forward);
  }
  const failure = await intake.settle();
  if (failure) {
    // Storing failed (PostgreSQL away?): give the attempt back and let the queue retry the job.
    await pipeline.handBacks.push(claim).catch(() => false);
    throw failure;
  }
  if (outcome.kind === "cancelled" && (outcome.reason === ABORT.shutdown || outcome.reason === ABORT.lockLost)) {
    await pipeline.handBacks.push(claim);
    ctx.events.emit("session:transition", {
      sessionId: claim.session.id, instanceId: claim.instance.id, from: "running", to: "queued", attempt: claim.session.attempt, reason: outcome.reason,
    });
    return { kind: "handed_back", reason: outcome.reason };
  }
  return finish(ctx, pipeline, claim, addr, outcome);
}

type SessionHooks = Pick<QrSessionOptions, "onQr" | "onNotice" | "signal">;

/** One attempt over the instance's QR transport: the websocket, or REST polling when it was chosen. */
function runSession(ctx: FleetContext, claim: Claim, addr: InstanceAddress, hooks: SessionHooks): Promise<SessionOutcome> {
  const timeoutMs = ctx.config.QRFLEET_HTTP_TIMEOUT_MS;
  const bounds = { silenceMs: ctx.config.QRFLEET_SILENCE_MS, maxMs: ctx.config.QRFLEET_ATTEMPT_MAX_MS };
  if (claim.instance.qrTransport === "rest") {
    // REST answers carry no scan window: the configured one bounds a run as the provider's bounds a socket.
    return runRestQrSession({ client: providerClient(ctx, addr), windowMs: ctx.config.QRFLEET_SCAN_WINDOW_MS, ...bounds, ...hooks });
  }
  return runQrSession({ connect: connectorFor(addr, { timeoutMs }), ...bounds, ...hooks });
}

async function finish(
  ctx: FleetContext,
  pipeline: SessionPipeline,
  claim: Claim,
  addr: InstanceAddress | null,
  outcome: SessionOutcome,
): Promise<AttemptRun> {
  const end = await finishAttempt(ctx, claim, outcome, pipeline.leaseMs);
  if (end.stale) return { kind: "stale" };
  const { session, instance } = claim;
  ctx.events.emit("session:transition", {
    sessionId: session.id, instanceId: instance.id, from: "running", to: end.status, attempt: session.attempt,
    reason: outcome.kind === "failed" ? outcome.reason : outcome.kind, nextAttemptInMs: end.next?.delayMs,
  });
  if (end.next) await addSessionJob(ctx.queues, { sessionId: session.id, attempt: end.next.attempt }, end.next.delayMs);
  pipeline.dispatcher.dispatch(outcomeDeliveries(claim, end, outcome, pipeline.leaseMs));
  if (addr && (end.status === "authorized" || end.status === "wrong_number")) await confirmScan(ctx, claim, addr, end.status);
  return { kind: "done", status: end.status };
}

function outcomeDeliveries(claim: Claim, end: AttemptEnd, outcome: SessionOutcome, leaseMs: number): Outbound[] {
  const event = end.event;
  if (!event) return [];
  const parties = eventParties(claim, end.status);
  const view: EventView = {
    id: event.id, type: event.type, createdAt: event.createdAt, attempt: claim.session.attempt, qrSequence: null, validUntil: null,
    data: event.data,
    ...parties,
    session: { ...parties.session!, phone: outcome.kind === "authorized" ? outcome.phone : null },
  };
  const leaseUntil = Date.now() + leaseMs;
  return event.deliveries.map((d) => ({
    deliveryId: d.id, channelId: d.channelId, view, key: claim.session.id, supersedes: false,
    check: () => ({ ok: true, qr: null }), leaseUntil, receivedAt: null,
  }));
}

/** Confirms a scan with getStateInstance, and logs a wrong number out when configured to. */
async function confirmScan(ctx: FleetContext, claim: Claim, addr: InstanceAddress, status: SessionStatus): Promise<void> {
  const client = providerClient(ctx, addr);
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
