import { randomUUID } from "node:crypto";
import type { SessionStatus } from "../../db.js";
import { runRestAttempt } from "../../greenapi/rest-attempt.js";
import { runSocketAttempt, type SocketAttemptOptions } from "../../greenapi/socket-attempt.js";
import { connectorFor } from "../../greenapi/socket.js";
import type { GreenApiClient } from "../../greenapi/rest.js";
import type { AttemptOutcome } from "../../greenapi/types.js";
import { MASK } from "../../log.js";
import { writePersistently } from "../../lib/persistent-write.js";
import type { Outbound } from "../../notify/dispatcher.js";
import type { EventView } from "../../notify/types.js";
import { addSessionJob, type SessionJob } from "../../queues.js";
import { finishAttempt, type AttemptEnd, type Claim } from "./attempts.js";
import type { FleetContext } from "../context.js";
import { providerPolicy } from "../provider/outbound.js";
import { recordInstanceState } from "../instances/instance-state.js";
import { providerFor, UNREADABLE_TOKEN as UNREADABLE, type Provider } from "../provider/provider.js";
import { eventParties, QrIntake, type SessionPipeline } from "./qr-intake.js";
import { scheduleSettingsCheck } from "../instances/settings-watch.js";

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
const UNREADABLE_TOKEN: AttemptOutcome = { kind: "failed", reason: "invalid_token", message: UNREADABLE };

export async function runAttempt(
  ctx: FleetContext,
  pipeline: SessionPipeline,
  job: SessionJob,
  signal?: AbortSignal,
): Promise<AttemptRun> {
  const claim = await pipeline.claims.push({ sessionId: job.sessionId, attempt: job.attempt, runId: randomUUID() });
  if (!claim) return { kind: "stale" };
  ctx.events.emit("attempt:run", { sessionId: claim.session.id, running: true });
  try {
    return await runClaimed(ctx, pipeline, claim, signal);
  } finally {
    ctx.events.emit("attempt:run", { sessionId: claim.session.id, running: false });
  }
}

async function runClaimed(ctx: FleetContext, pipeline: SessionPipeline, claim: Claim, signal?: AbortSignal): Promise<AttemptRun> {
  ctx.events.emit("session:transition", {
    sessionId: claim.session.id, instanceId: claim.instance.id, from: claim.resumed ? "running" : "queued", to: "running",
    trigger: claim.session.trigger, attempt: claim.session.attempt, reason: claim.resumed ? "resumed" : undefined,
  });
  const provider = providerFor(ctx, claim.instance);
  if (!provider) return finish(ctx, pipeline, claim, null, UNREADABLE_TOKEN);
  const run = new AbortController();
  const forward = () => run.abort(signal?.reason);
  signal?.addEventListener("abort", forward, { once: true });
  const intake = new QrIntake(ctx, pipeline, claim, (reason) => run.abort(reason));
  let outcome: AttemptOutcome;
  try {
    outcome = await runOverTransport(ctx, claim, provider, {
      onQr: intake.onQr,
      onNotice: (n) => ctx.events.emit("session:notice", {
        sessionId: claim.session.id, kind: n.kind,
        detail: "type" in n ? n.type : "reason" in n ? n.reason : undefined, count: "count" in n ? n.count : undefined,
      }),
      signal: run.signal,
    });
  } finally {
    signal?.removeEventListener("abort", forward);
  }
  const failure = await intake.settle();
  // A provider that ended the attempt itself (a scan above all) said something a new socket
  // cannot say again: it is recorded even though a QR image of the attempt could not be stored.
  if (failure && outcome.kind === "cancelled") {
    // Storing failed (PostgreSQL away?): give the attempt back and let the queue retry the job.
    await pipeline.handBacks.push(claim).catch(() => false);
    throw failure;
  }
  outcome = await withoutSecrets(ctx, outcome, claim.instance.id, provider.address.token);
  outcome = await scanOfAnEarlierRun(ctx, claim, provider.client, outcome);
  if (outcome.kind === "cancelled" && (outcome.reason === ABORT.shutdown || outcome.reason === ABORT.lockLost)) {
    await pipeline.handBacks.push(claim);
    ctx.events.emit("session:transition", {
      sessionId: claim.session.id, instanceId: claim.instance.id, from: "running", to: "queued", trigger: claim.session.trigger,
      attempt: claim.session.attempt, reason: outcome.reason,
    });
    return { kind: "handed_back", reason: outcome.reason };
  }
  return finish(ctx, pipeline, claim, provider, outcome, signal);
}

/**
 * The provider may quote the instance's token or its webhook token back (an `error` frame): both
 * are masked before anything stores, logs or sends the message. Only a failure has one, so the
 * webhook token is read then, not on every claim.
 */
async function withoutSecrets(ctx: FleetContext, outcome: AttemptOutcome, instanceId: string, token: string): Promise<AttemptOutcome> {
  if (outcome.kind !== "failed") return outcome;
  let secrets: string[];
  try {
    secrets = [token, ...(await webhookTokenOf(ctx, instanceId))];
  } catch {
    return { ...outcome, message: `${outcome.reason}: the provider's message is withheld (it could not be checked for secrets)` };
  }
  const message = secrets.reduce((text, s) => (s === "" ? text : text.split(s).join(MASK)), outcome.message);
  return message === outcome.message ? outcome : { ...outcome, message };
}

async function webhookTokenOf(ctx: FleetContext, instanceId: string): Promise<string[]> {
  const row = await ctx.db.instance.findUnique({ where: { id: instanceId }, select: { webhookTokenCiphertext: true } });
  // An unreadable one throws: the message is then withheld, as nothing can be masked in it.
  return row?.webhookTokenCiphertext ? [ctx.box.open(row.webhookTokenCiphertext)] : [];
}

/**
 * A run that finds the instance linked, after an earlier run of the same session showed QR codes
 * (a retry, or an attempt resumed after a crash or a lost lock), has most likely met the scan of
 * one of them, whose `accountData` went to a socket that is gone. Its phone is asked for, so the
 * session ends `authorized` (or `wrong_number`) as the scan deserved, not `already_logged` with
 * no phone checked. When the provider does not say, the outcome stays as it was.
 */
async function scanOfAnEarlierRun(ctx: FleetContext, claim: Claim, client: GreenApiClient, outcome: AttemptOutcome): Promise<AttemptOutcome> {
  if (outcome.kind !== "already_logged" || (!claim.resumed && claim.session.attempt === 1)) return outcome;
  try {
    const { phone, state } = await client.getWaSettings();
    if (state !== "authorized" || phone === null) return outcome;
    ctx.log.info({ sessionId: claim.session.id, attempt: claim.session.attempt }, "linked after an earlier run's QR: recorded as its scan");
    return { kind: "authorized", accountData: undefined, phone };
  } catch (err) {
    ctx.log.warn({ err, sessionId: claim.session.id }, "could not read the linked phone; the session ends already_logged");
    return outcome;
  }
}

type AttemptHooks = Pick<SocketAttemptOptions, "onQr" | "onNotice" | "signal">;

/** One attempt over the instance's QR transport: the websocket, or REST polling when it was chosen. */
function runOverTransport(ctx: FleetContext, claim: Claim, provider: Provider, hooks: AttemptHooks): Promise<AttemptOutcome> {
  const timeoutMs = ctx.config.QRFLEET_HTTP_TIMEOUT_MS;
  const bounds = { silenceMs: ctx.config.QRFLEET_SILENCE_MS, maxMs: ctx.config.QRFLEET_ATTEMPT_MAX_MS };
  if (claim.instance.qrTransport === "rest") {
    // REST answers carry no scan window: the configured one bounds a run as the provider's bounds a socket.
    return runRestAttempt({ client: provider.client, windowMs: ctx.config.QRFLEET_SCAN_WINDOW_MS, ...bounds, ...hooks });
  }
  const pace = { qrMinIntervalMs: ctx.config.QRFLEET_QR_MIN_INTERVAL_MS, qrFloodFrames: ctx.config.QRFLEET_QR_FLOOD_FRAMES };
  const rateLimit = { rateLimitRetries: ctx.config.QRFLEET_PROVIDER_RATE_LIMIT_RETRIES, retryAfterMaxMs: ctx.config.QRFLEET_PROVIDER_RETRY_AFTER_MAX_MS };
  return runSocketAttempt({ connect: connectorFor(provider.address, { timeoutMs, ...rateLimit, outbound: providerPolicy(ctx) }), ...bounds, ...pace, ...hooks });
}

async function finish(
  ctx: FleetContext,
  pipeline: SessionPipeline,
  claim: Claim,
  provider: Provider | null,
  outcome: AttemptOutcome,
  signal?: AbortSignal,
): Promise<AttemptRun> {
  const end = await recordOutcome(ctx, claim, outcome, pipeline.leaseMs, signal);
  if (end.stale) return { kind: "stale" };
  const { session, instance } = claim;
  ctx.events.emit("session:transition", {
    sessionId: session.id, instanceId: instance.id, from: "running", to: end.status, trigger: session.trigger, attempt: session.attempt,
    reason: outcome.kind === "failed" ? outcome.reason : outcome.kind, nextAttemptInMs: end.next?.delayMs,
  });
  if (end.next) await addSessionJob(ctx.queues, { sessionId: session.id, attempt: end.next.attempt }, end.next.delayMs);
  pipeline.dispatcher.dispatch(outcomeDeliveries(claim, end, outcome, pipeline.leaseMs));
  if (provider && (end.status === "authorized" || end.status === "wrong_number")) await confirmScan(ctx, claim, provider.client, end.status);
  if (end.status === "authorized") await scheduleSettingsCheck(ctx, instance.id);
  return { kind: "done", status: end.status };
}

/**
 * An outcome the provider gave once (a scan's accountData above all) is lost if it is not
 * recorded: the next socket only says `alreadyLogged`, so a wrong phone would pass unnoticed.
 * The write is fenced by the run's id, so a try that did commit makes the next one stale, never
 * a second outcome.
 */
const OUTCOME_RECORD_FOR_MS = 60_000;

function recordOutcome(ctx: FleetContext, claim: Claim, outcome: AttemptOutcome, leaseMs: number, signal?: AbortSignal): Promise<AttemptEnd> {
  return writePersistently(() => finishAttempt(ctx, claim, outcome, leaseMs), {
    forMs: OUTCOME_RECORD_FOR_MS,
    signal,
    onRetry: (err) => ctx.log.warn({ err, sessionId: claim.session.id }, "could not record the attempt's outcome yet; trying again"),
  });
}

function outcomeDeliveries(claim: Claim, end: AttemptEnd, outcome: AttemptOutcome, leaseMs: number): Outbound[] {
  const event = end.event;
  if (!event) return [];
  const parties = eventParties(claim, end.status);
  const view: EventView = {
    id: event.id, type: event.type, createdAt: event.createdAt, attempt: claim.session.attempt, qrSequence: null,
    data: event.data,
    ...parties,
    session: { ...parties.session!, phone: outcome.kind === "authorized" ? outcome.phone : null },
  };
  const leaseUntil = Date.now() + leaseMs;
  return event.deliveries.map((d) => ({
    deliveryId: d.id, channelId: d.channelId, view, key: claim.session.id, supersedes: false, leaseUntil, receivedAt: null,
  }));
}

/** Confirms a scan with getStateInstance, and logs a wrong number out when configured to. */
async function confirmScan(ctx: FleetContext, claim: Claim, client: GreenApiClient, status: SessionStatus): Promise<void> {
  try {
    if (status === "wrong_number" && ctx.config.QRFLEET_LOGOUT_ON_WRONG_NUMBER) {
      await client.logout();
      ctx.log.warn({ instanceId: claim.instance.id }, "wrong number scanned: instance logged out");
    }
    const { state } = await client.getStateInstance();
    await recordInstanceState(ctx, { instance: { id: claim.instance.id }, state, at: new Date() });
  } catch (err) {
    ctx.log.warn({ err, instanceId: claim.instance.id }, "could not confirm the instance state after the scan");
  }
}
