import { Batcher } from "../../lib/batcher.js";
import type { InstanceState } from "../../greenapi/types.js";
import { watchesEpisodes } from "../instances/alerts.js";
import type { FleetContext } from "../context.js";
import {
  followWrittenStates, newestPerInstance, policyFor, writeInstanceStates, type StateReport, type WrittenState,
} from "../instances/instance-state.js";
import { endSessionAuthorizedByProvider, enqueueSessionsFor } from "../sessions/sessions.js";

/**
 * The provider's state reports, written together: the reports that arrive while a statement is in
 * flight join the next one, so a storm of webhooks costs a statement per batch, not a few queries
 * per webhook. A webhook is answered once its report is committed and what it leads to is done:
 * a session started for `notAuthorized` (one statement for the batch), the open one ended for
 * `authorized`, an episode followed. A report that leads to nothing (most of a storm: the state
 * the instance is already in) is answered at the commit, without waiting for the others' steps.
 *
 * A few statements may be in flight at once, so one held up (a busy server, a lock) delays only
 * its own batch. Their order does not matter: each instance keeps its newest report whichever
 * statement comes first (the stale-write guard), and rows are locked in id order, so statements
 * writing the same instances wait for each other instead of deadlocking.
 */

export type WebhookAction = "enqueued" | "already_open" | "ended_authorized" | "recorded" | "stale" | "disabled";

export interface HookOutcome {
  instanceId: string;
  action: WebhookAction;
  sessionId?: string;
}

export interface HookReport {
  instanceId: string;
  state: InstanceState;
  at: Date;
}

/** Provider timestamps have whole seconds: an event in the same second as our last record is not stale. */
const PROVIDER_CLOCK_MS = 1_000;
/** Statements in flight at once. */
const WRITERS = 4;

type Answer = { outcome: Promise<HookOutcome> };

export class HookIntake {
  private readonly batcher: Batcher<HookReport, Answer>;
  private readonly acting = new Set<Promise<unknown>>();

  constructor(private readonly ctx: FleetContext) {
    const onError = (err: unknown, items: number, willRetry: boolean) =>
      ctx.log[willRetry ? "warn" : "error"]({ err, items, willRetry }, "recording provider webhooks failed");
    this.batcher = new Batcher({ run: (reports: HookReport[]) => this.write(reports), concurrency: WRITERS, onError });
  }

  /** Resolves once the report is committed and acted on; rejects if it could not be (the provider then retries). */
  async submit(report: HookReport): Promise<HookOutcome> {
    return (await this.batcher.push(report)).outcome;
  }

  /** Resolves once every report submitted so far is answered. */
  async close(): Promise<void> {
    await this.batcher.drain();
    await Promise.allSettled([...this.acting]);
  }

  private async write(batch: HookReport[]): Promise<Answer[]> {
    const reports: StateReport[] = batch.map((r) => ({
      instance: { id: r.instanceId }, state: r.state, at: r.at, precisionMs: PROVIDER_CLOCK_MS, viaHook: true,
    }));
    const written = await writeInstanceStates(this.ctx, reports);
    const newest = newestPerInstance(reports);
    const outcomes = this.actOn(newest, written);
    const settled = Promise.allSettled(outcomes.values());
    this.acting.add(settled);
    void settled.then(() => this.acting.delete(settled));
    const newestOf = new Map(newest.map((r) => [r.instance.id, r]));
    return reports.map((r) => {
      const outcome = outcomes.get(r.instance.id)!.then((o) => outcomeOf(r, newestOf.get(r.instance.id)!, o));
      // Awaited by the webhook's request a moment later; until then a failure is not "unhandled".
      outcome.catch(() => undefined);
      return { outcome };
    });
  }

  /** Each instance's outcome: sessions started in one statement for the batch, ended one by one (an end is rare: a scan). */
  private actOn(newest: StateReport[], written: ReadonlyMap<string, WrittenState>): Map<string, Promise<HookOutcome>> {
    const { ctx } = this;
    const outcomes = new Map<string, Promise<HookOutcome>>();
    const done = (instanceId: string, action: WebhookAction, sessionId?: string) =>
      outcomes.set(instanceId, Promise.resolve({ instanceId, action, ...(sessionId && { sessionId }) }));
    const starts: string[] = [];
    for (const { instance: { id }, state } of newest) {
      const found = written.get(id);
      const policy = policyFor(state, ctx.config.QRFLEET_STATE_POLICIES);
      if (!found) done(id, "stale");
      else if (policy === "start_session" && !found.enabled) done(id, "disabled");
      else if (policy === "start_session" && found.openSessionId) done(id, "already_open", found.openSessionId);
      else if (policy === "start_session") starts.push(id);
      // Only the socket's accountData names the phone that scanned: with a phone expected, the attempt decides.
      else if (policy === "end_session" && !found.expectedPhone && found.openSessionId) outcomes.set(id, this.end(id));
      else done(id, "recorded");
    }
    const started = enqueueSessionsFor(ctx, starts, "provider");
    for (const id of starts) {
      outcomes.set(id, started.then((s) => ({ instanceId: id, action: s.get(id)?.created ? "enqueued" : "already_open", ...(s.has(id) && { sessionId: s.get(id)!.sessionId }) })));
    }
    // Episodes (alerts, reboots) are followed for the reports that may end or continue one; those wait for it too.
    const episodic = newest.filter((r) => written.get(r.instance.id)?.mayEndEpisode || watchesEpisodes(r.state, ctx.config.QRFLEET_STATE_POLICIES));
    if (episodic.length > 0) {
      const followed = followWrittenStates(ctx, episodic, written);
      for (const r of episodic) outcomes.set(r.instance.id, Promise.all([outcomes.get(r.instance.id)!, followed]).then(([o]) => o));
    }
    return outcomes;
  }

  private async end(instanceId: string): Promise<HookOutcome> {
    const ended = await endSessionAuthorizedByProvider(this.ctx, instanceId);
    return ended ? { instanceId, action: "ended_authorized", sessionId: ended.id } : { instanceId, action: "recorded" };
  }
}

/**
 * A report that lost to a newer one of its instance in the same batch was not written: if it said
 * the same, it shares the newer one's outcome (a session it started is one already open for it);
 * if it said something else, it is as stale as if it had come after it.
 */
function outcomeOf(report: StateReport, newest: StateReport, outcome: HookOutcome): HookOutcome {
  if (report === newest) return outcome;
  if (report.state !== newest.state || outcome.action === "stale") return { instanceId: outcome.instanceId, action: "stale" };
  if (outcome.action === "enqueued") return { ...outcome, action: "already_open" };
  if (outcome.action === "ended_authorized") return { instanceId: outcome.instanceId, action: "recorded" };
  return outcome;
}
