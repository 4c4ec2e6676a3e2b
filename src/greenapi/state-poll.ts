import type { Agent, Dispatcher } from "undici";
import { maskSecrets } from "../log.js";
import { guardedAgent, type OutboundPolicy } from "../outbound-guard.js";
import { describeCause, errorForStatus, ProviderProtocolError, ProviderUnavailableError } from "./errors.js";
import { toInstanceState, type InstanceAddress, type InstanceState } from "./types.js";

/**
 * The sweep's one call, `getStateInstance`, at the cost of a bare poller. The address was checked
 * when it was stored. The calls share keep-alive connections of their own and go to undici's
 * dispatcher directly: no URL is parsed, no stream, promise or closure is made per call (one
 * handler object), and the timeouts are undici's (no timer or signal per call). Only the one field
 * is read. Pacing is the caller's: the sweep polls an instance once an interval.
 */

/** A state answer is a few dozen bytes; anything near this is not one. */
const MAX_STATE_BYTES = 4096;
/** Held open between calls; a server that closes sooner says so, and undici follows it. */
const KEEP_ALIVE_MS = 60_000;

export interface StatePoll {
  state: InstanceState;
  raw: string;
}

/** Called once per poll: the state, or a GreenApiError naming the call with its token masked. */
export type PollDone = (err: Error | null, answer: StatePoll | null) => void;

export class StatePoller {
  private readonly agent: Agent;

  /** `connections`: the most kept open to one provider host (about the calls in flight); `outbound`: where they may go. */
  constructor(timeoutMs: number, connections: number, outbound: OutboundPolicy) {
    this.agent = guardedAgent(outbound, { connections, keepAliveTimeout: KEEP_ALIVE_MS, headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
  }

  /** Asks the instance's state; `done` is called once, with it or with the error. No promise per call: it is the sweep's hot path. */
  pollThen(addr: InstanceAddress, done: PollDone): void {
    const answer = new StateAnswer(addr.apiUrl, `/waInstance${addr.idInstance}/getStateInstance/${addr.token}`, done);
    try {
      this.agent.dispatch({ origin: addr.apiUrl, path: answer.path, method: "GET" }, answer);
    } catch (err) {
      answer.onError(err as Error);
    }
  }

  close(): Promise<void> {
    return this.agent.close();
  }
}

class TooLarge extends Error {
  constructor(readonly status: number) {
    super("answer too large");
  }
}

/**
 * One call's answer, read through undici's own handler interface: the response headers (which a
 * state answer does not need) are never parsed, and a body over MAX_STATE_BYTES aborts the call.
 */
class StateAnswer implements Dispatcher.DispatchHandler {
  private status = 0;
  private size = 0;
  private abort: ((err: Error) => void) | null = null;
  private readonly chunks: Buffer[] = [];

  constructor(
    private readonly apiUrl: string,
    readonly path: string,
    private readonly done: PollDone,
  ) {}

  onConnect(abort: (err: Error) => void): void {
    this.abort = abort;
  }

  onHeaders(statusCode: number): boolean {
    this.status = statusCode;
    return true;
  }

  onData(chunk: Buffer): boolean {
    this.size += chunk.byteLength;
    if (this.size > MAX_STATE_BYTES) {
      this.abort?.(new TooLarge(this.status));
      return false;
    }
    this.chunks.push(chunk);
    return true;
  }

  onComplete(): void {
    const { status, chunks } = this;
    if (status < 200 || status > 299) return this.done(errorForStatus(status, this.describe()), null);
    const raw = stateOf(chunks.length === 1 ? chunks[0]!.toString("utf8") : Buffer.concat(chunks).toString("utf8"));
    if (raw === null) return this.done(new ProviderProtocolError(`${this.describe()} answered HTTP ${status} without a stateInstance`, status), null);
    this.done(null, { state: toInstanceState(raw), raw });
  }

  onError(err: Error): void {
    this.done(
      err instanceof TooLarge
        ? new ProviderProtocolError(`${this.describe()} answered a body over ${MAX_STATE_BYTES} bytes`, err.status)
        : new ProviderUnavailableError(`${this.describe()} failed (${describeCause(err)})`),
      null,
    );
  }

  private describe(): string {
    return `GET ${maskSecrets(this.apiUrl + this.path)}`;
  }
}

function stateOf(text: string): string | null {
  try {
    const value = (JSON.parse(text) as { stateInstance?: unknown } | null)?.stateInstance;
    return typeof value === "string" && value.length > 0 && value.length <= 100 ? value : null;
  } catch {
    return null;
  }
}
