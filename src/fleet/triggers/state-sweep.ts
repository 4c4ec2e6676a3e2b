import type { SessionTrigger } from "../../db.js";
import { GreenApiError } from "../../greenapi/errors.js";
import { StatePoller, type PollDone } from "../../greenapi/state-poll.js";
import type { InstanceState } from "../../greenapi/types.js";
import type { FleetContext } from "../context.js";
import { hostBudgetOf, type HostBudget } from "../provider/host-budget.js";
import { providerPolicy } from "../provider/outbound.js";
import { flagForAttention, policyFor, recordInstanceStates } from "../instances/instance-state.js";
import { UNREADABLE_TOKEN } from "../provider/provider.js";
import { enqueueSessions } from "../sessions/sessions.js";
import { sweepTokensOf, TOKEN_MARK_COLUMN, type OpenedToken, type SweepTokens } from "./sweep-tokens.js";

/**
 * Polls instances' states with a bounded number of calls in flight and records the answers in
 * batches: one statement per batch, one bulk enqueue for the logged-out ones. The full sweep, the
 * sweep's slices and an instance's own schedule all poll through it.
 */

/** What a poll needs of an instance, and no more: the sweep reads these columns only. */
export interface SweepTarget {
  id: string;
  apiUrl: string;
  idInstance: string;
  /** A fingerprint of the sealed token (fleet/triggers/sweep-tokens.ts): the sealed bytes are read only when it changes. */
  tokenMark: string;
  lastState: string | null;
  /** When `lastState` was last confirmed, ms since the epoch: a number, since no Date is needed per row. */
  lastStateAtMs: number | null;
}

export const TARGET_COLUMNS = `i.id, i."apiUrl", i."idInstance", ${TOKEN_MARK_COLUMN}, i."lastState",
  (extract(epoch FROM i."lastStateAt") * 1000)::float8 AS "lastStateAtMs"`;
/** An instance with a session open is not polled: its socket says more, and sooner. */
export const NOT_IN_SESSION = `NOT EXISTS (SELECT 1 FROM "QrSession" s WHERE s."instanceId" = i.id AND s.status IN ('queued', 'running'))`;

export interface SweepResult {
  checked: number;
  notAuthorized: number;
  enqueued: number;
  errors: number;
}

type Polled = { target: SweepTarget; state: InstanceState; atMs: number } | { target: SweepTarget; error: string };

const BATCH = 500;
/** An answer waits at most this long for its batch to fill: one statement per batch, not per answer. */
const BATCH_WAIT_MS = 1_000;

/** The daemon's state polls in flight, every sweep's together: at most QRFLEET_SWEEP_CONCURRENCY. */
class PollLanes {
  private inFlight = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(private readonly size: number) {}

  /** Takes a lane: at once when one is free (no promise), else a promise of one. */
  take(): Promise<void> | undefined {
    if (this.inFlight < this.size) {
      this.inFlight += 1;
      return undefined;
    }
    return this.wait();
  }

  private async wait(): Promise<void> {
    while (this.inFlight >= this.size) await new Promise<void>((free) => this.waiting.push(free));
    this.inFlight += 1;
  }

  give(): void {
    this.inFlight -= 1;
    this.waiting.shift()?.();
  }
}

const lanes = new WeakMap<FleetContext, PollLanes>();

function lanesOf(ctx: FleetContext): PollLanes {
  let l = lanes.get(ctx);
  if (!l) lanes.set(ctx, (l = new PollLanes(ctx.config.QRFLEET_SWEEP_CONCURRENCY)));
  return l;
}

export class StateSweep {
  readonly result: SweepResult = { checked: 0, notAuthorized: 0, enqueued: 0, errors: 0 };
  private readonly answers: Polled[] = [];
  private readonly writes = new Set<Promise<void>>();
  private pending = 0;
  private settled: (() => void) | undefined;
  private failure: unknown;
  private batchTimer: NodeJS.Timeout | undefined;
  private readonly lanes: PollLanes;
  private readonly poller: StatePoller;
  private readonly tokens: SweepTokens;
  private readonly budget: HostBudget;

  constructor(
    private readonly ctx: FleetContext,
    private readonly trigger: SessionTrigger,
    private readonly signal?: AbortSignal,
  ) {
    this.lanes = lanesOf(ctx);
    this.poller = statePollerOf(ctx);
    this.tokens = sweepTokensOf(ctx);
    this.budget = hostBudgetOf(ctx);
  }

  /**
   * Opens, one statement for all of them, the tokens of a page of targets about to be polled, and
   * gives them in the targets' order, for `poll`.
   */
  prepare(targets: readonly SweepTarget[]): Promise<OpenedToken[]> {
    return this.tokens.prepare(targets);
  }

  /**
   * Polls `target` without waiting for its answer, once a lane of the daemon's is free
   * (QRFLEET_SWEEP_CONCURRENCY): a promise only when the caller must wait for one. `token`: what
   * `prepare` gave for it, if it was prepared.
   */
  poll(target: SweepTarget, token?: OpenedToken): Promise<void> | undefined {
    const turn = this.lanes.take();
    if (turn) return turn.then(() => this.start(target, token));
    this.start(target, token);
    return undefined;
  }

  private start(target: SweepTarget, prepared: OpenedToken): void {
    this.pending += 1;
    const token = prepared === undefined ? this.tokens.openedFor(target) : prepared;
    if (token !== undefined) return this.send(target, token);
    this.tokens.prepare([target]).then(
      () => this.send(target, this.tokens.latestOf(target.id)),
      (err: unknown) => void this.failed(target, err).then(this.settle),
    );
  }

  /** The poll itself, its token opened: callbacks rather than promises, on the sweep's one hot path. */
  private send(target: SweepTarget, token: OpenedToken): void {
    const { ctx } = this;
    // Removed since it was read: nothing to poll.
    if (token === undefined) return this.settle(null);
    if (token === null) {
      ctx.log.warn({ instanceId: target.id }, UNREADABLE_TOKEN);
      return this.settle({ target, error: "unreadable_token" });
    }
    const address = { apiUrl: target.apiUrl, idInstance: target.idInstance, token };
    const done: PollDone = (err, answer) => {
      if (this.signal?.aborted) return this.settle(null);
      if (err) return void this.failed(target, err).then(this.settle);
      this.settle({ target, state: answer!.state, atMs: Date.now() });
    };
    const turn = this.budget.take(target.apiUrl);
    if (turn) void turn.then(() => this.poller.pollThen(address, done));
    else this.poller.pollThen(address, done);
  }

  private async failed(target: SweepTarget, err: unknown): Promise<Polled | null> {
    if (this.signal?.aborted) return null;
    const code = err instanceof GreenApiError ? err.code : "error";
    try {
      if (err instanceof GreenApiError && !err.transient) await flagForAttention(this.ctx, target.id, code);
    } catch (flagErr) {
      this.ctx.log.error({ err: flagErr, instanceId: target.id }, "flagging an instance for attention failed");
    }
    this.ctx.log.warn({ instanceId: target.id, code, err: (err as Error).message }, "state check failed");
    return { target, error: code };
  }

  /** A poll is over: its lane given back, its answer (if any) batched. */
  private readonly settle = (answer: Polled | null): void => {
    this.lanes.give();
    this.pending -= 1;
    if (answer) this.answers.push(answer);
    if (this.answers.length >= BATCH) this.flush();
    else this.batchTimer ??= setTimeout(() => this.flush(), BATCH_WAIT_MS);
    if (this.pending === 0) this.settled?.();
  };

  /** Every answer recorded; a write that failed fails the sweep. */
  async finish(): Promise<SweepResult> {
    while (this.pending > 0) await new Promise<void>((done) => (this.settled = done));
    this.flush();
    while (this.writes.size > 0) await Promise.all(this.writes);
    if (this.failure) throw this.failure;
    return this.result;
  }

  private flush(): void {
    clearTimeout(this.batchTimer);
    this.batchTimer = undefined;
    if (this.answers.length === 0) return;
    const write = this.record(this.answers.splice(0)).catch((err: unknown) => void (this.failure ??= err));
    this.writes.add(write);
    void write.finally(() => this.writes.delete(write));
  }

  private async record(batch: Polled[]): Promise<void> {
    const { ctx } = this;
    const states = batch.filter((p): p is Extract<Polled, { state: InstanceState }> => "state" in p);
    const toWrite = states.filter((p) => !stillLinked(ctx, p));
    const written = await recordInstanceStates(ctx, toWrite.map(({ target, state, atMs }) => ({ instance: target, state, at: new Date(atMs) })));
    const policies = ctx.config.QRFLEET_STATE_POLICIES;
    const loggedOut = states.filter((p) => policyFor(p.state, policies) === "start_session" && written.has(p.target.id)).map((p) => p.target.id);
    const { created } = await enqueueSessions(ctx, { ids: loggedOut }, this.trigger);
    const errors = batch.length - states.length;
    ctx.events.emit("sweep:polled", { polls: batch.length, errors });
    this.result.checked += batch.length;
    this.result.errors += errors;
    this.result.notAuthorized += loggedOut.length;
    this.result.enqueued += created;
  }
}

const pollers = new WeakMap<FleetContext, StatePoller>();

/** The keep-alive connections this context's state polls share: about one per poll in flight. */
export function statePollerOf(ctx: FleetContext): StatePoller {
  let poller = pollers.get(ctx);
  if (!poller) pollers.set(ctx, (poller = new StatePoller(ctx.config.QRFLEET_HTTP_TIMEOUT_MS, ctx.config.QRFLEET_SWEEP_CONCURRENCY, providerPolicy(ctx))));
  return poller;
}

/** Closes the context's state-poll connections; a later poll opens new ones. */
export async function closeStatePoller(ctx: FleetContext): Promise<void> {
  const poller = pollers.get(ctx);
  pollers.delete(ctx);
  await poller?.close();
}

/**
 * A linked instance found linked again is most of what a sweep learns: its row is rewritten only
 * once every few intervals (`lastStateAt` then says when it was last confirmed), so PostgreSQL
 * writes what changed rather than every poll. Every other state is written each time, since its
 * policy may act on how long it lasts (a reboot, an alert).
 */
const CONFIRM_EVERY_INTERVALS = 5;

/** Before this, an instance's recorded state was confirmed by nobody: the start-up sweep polls it. */
export function unconfirmedBefore(config: FleetContext["config"], now = Date.now()): Date {
  return new Date(now - (CONFIRM_EVERY_INTERVALS + 1) * config.QRFLEET_SWEEP_INTERVAL_MS);
}

function stillLinked(ctx: FleetContext, p: { target: SweepTarget; state: InstanceState; atMs: number }): boolean {
  const interval = ctx.config.QRFLEET_SWEEP_INTERVAL_MS;
  const confirmedAt = p.target.lastStateAtMs ?? -Infinity;
  return p.state === "authorized" && p.target.lastState === "authorized" && interval > 0 && p.atMs - confirmedAt < CONFIRM_EVERY_INTERVALS * interval;
}
