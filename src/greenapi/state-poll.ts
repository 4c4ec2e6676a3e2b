import { request } from "undici";
import { maskSecrets } from "../log.js";
import { describeCause, errorForStatus, ProviderProtocolError, ProviderUnavailableError } from "./errors.js";
import { readBounded } from "./rest.js";
import { toInstanceState, type InstanceAddress, type InstanceState } from "./types.js";

/**
 * The sweep's one call, `getStateInstance`, at the cost of a bare poller: the address was checked
 * when it was stored, the timeouts are undici's own (no timer or signal per call), and nothing
 * but the one field is read. Pacing is the caller's: the sweep polls an instance once an interval.
 */

/** A state answer is a few dozen bytes; anything near this is not one. */
const MAX_STATE_BYTES = 4096;

export interface StatePoll {
  state: InstanceState;
  raw: string;
}

/** The caller's abort is not passed on: a sweep's thousands of calls share one signal, and each ends within `timeoutMs`. */
export async function pollInstanceState(addr: InstanceAddress, timeoutMs: number): Promise<StatePoll> {
  const url = `${addr.apiUrl}/waInstance${addr.idInstance}/getStateInstance/${addr.token}`;
  let status: number;
  let text: string;
  try {
    const res = await request(url, { method: "GET", headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
    status = res.statusCode;
    text = await readBounded(res, () => describe(url), MAX_STATE_BYTES);
  } catch (err) {
    if (err instanceof ProviderProtocolError) throw err;
    throw new ProviderUnavailableError(`${describe(url)} failed (${describeCause(err)})`);
  }
  if (status < 200 || status > 299) throw errorForStatus(status, describe(url));
  const raw = stateOf(text);
  if (raw === null) throw new ProviderProtocolError(`${describe(url)} answered HTTP ${status} without a stateInstance`, status);
  return { state: toInstanceState(raw), raw };
}

function stateOf(text: string): string | null {
  try {
    const value = (JSON.parse(text) as { stateInstance?: unknown } | null)?.stateInstance;
    return typeof value === "string" && value.length > 0 && value.length <= 100 ? value : null;
  } catch {
    return null;
  }
}

const describe = (url: string) => `GET ${maskSecrets(url)}`;
