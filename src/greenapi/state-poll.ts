import type { Agent, Dispatcher } from "undici";
import { maskSecrets } from "../log.js";
import { guardedAgent, type OutboundPolicy } from "../outbound-guard.js";
import { describeCause, errorForStatus, ProviderProtocolError, ProviderUnavailableError } from "./errors.js";
import { toInstanceState, type InstanceAddress, type InstanceState } from "./types.js";

/**
 * The sweep's one call, `getStateInstance`, at the cost of a bare poller. The address was checked
 * when it was stored. The calls share keep-alive connections of their own and go to undici's
 * dispatcher directly: no URL is parsed, no stream or body promise is made per call, and the
 * timeouts are undici's (no timer or signal per call). Only the one field is read. Pacing is the
 * caller's: the sweep polls an instance once an interval.
 */

/** A state answer is a few dozen bytes; anything near this is not one. */
const MAX_STATE_BYTES = 4096;
/** Held open between calls; a server that closes sooner says so, and undici follows it. */
const KEEP_ALIVE_MS = 60_000;
const ACCEPT_JSON = Object.freeze({ accept: "application/json" });

export interface StatePoll {
  state: InstanceState;
  raw: string;
}

export class StatePoller {
  private readonly agent: Agent;

  /** `connections`: the most kept open to one provider host (about the calls in flight); `outbound`: where they may go. */
  constructor(timeoutMs: number, connections: number, outbound: OutboundPolicy) {
    this.agent = guardedAgent(outbound, { connections, keepAliveTimeout: KEEP_ALIVE_MS, headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
  }

  /** The instance's state, or a GreenApiError naming the call with its token masked. */
  async poll(addr: InstanceAddress): Promise<StatePoll> {
    const path = `/waInstance${addr.idInstance}/getStateInstance/${addr.token}`;
    const describe = () => `GET ${maskSecrets(addr.apiUrl + path)}`;
    let answer: { status: number; text: string };
    try {
      answer = await this.get(addr.apiUrl, path);
    } catch (err) {
      if (err instanceof TooLarge) throw new ProviderProtocolError(`${describe()} answered a body over ${MAX_STATE_BYTES} bytes`, err.status);
      throw new ProviderUnavailableError(`${describe()} failed (${describeCause(err)})`);
    }
    const { status, text } = answer;
    if (status < 200 || status > 299) throw errorForStatus(status, describe());
    const raw = stateOf(text);
    if (raw === null) throw new ProviderProtocolError(`${describe()} answered HTTP ${status} without a stateInstance`, status);
    return { state: toInstanceState(raw), raw };
  }

  close(): Promise<void> {
    return this.agent.close();
  }

  private get(origin: string, path: string): Promise<{ status: number; text: string }> {
    return new Promise((resolve, reject) => {
      this.agent.dispatch({ origin, path, method: "GET", headers: ACCEPT_JSON }, bodyReader(resolve, reject));
    });
  }
}

class TooLarge extends Error {
  constructor(readonly status: number) {
    super("answer too large");
  }
}

/**
 * Collects a small body; one over MAX_STATE_BYTES aborts the call. It speaks undici's own handler
 * interface, so the response headers (which a state answer does not need) are never parsed.
 */
function bodyReader(resolve: (a: { status: number; text: string }) => void, reject: (err: unknown) => void): Dispatcher.DispatchHandler {
  let status = 0;
  let size = 0;
  let abort: (err: Error) => void = () => undefined;
  const chunks: Buffer[] = [];
  return {
    onConnect(abortCall) {
      abort = abortCall;
    },
    onHeaders(statusCode) {
      status = statusCode;
      return true;
    },
    onData(chunk) {
      size += chunk.byteLength;
      if (size > MAX_STATE_BYTES) {
        abort(new TooLarge(status));
        return false;
      }
      chunks.push(chunk);
      return true;
    },
    onComplete() {
      resolve({ status, text: chunks.length === 1 ? chunks[0]!.toString("utf8") : Buffer.concat(chunks).toString("utf8") });
    },
    onError(err) {
      reject(err);
    },
  };
}

function stateOf(text: string): string | null {
  try {
    const value = (JSON.parse(text) as { stateInstance?: unknown } | null)?.stateInstance;
    return typeof value === "string" && value.length > 0 && value.length <= 100 ? value : null;
  } catch {
    return null;
  }
}
