import type { StatePoll, StatePoller } from "../../src/greenapi/state-poll.js";
import type { InstanceAddress } from "../../src/greenapi/types.js";

/** One state poll as a promise: the sweep calls `pollThen` with a callback, a test awaits it. */
export const pollState = (poller: StatePoller, addr: InstanceAddress) =>
  new Promise<StatePoll>((resolve, reject) => poller.pollThen(addr, (err, answer) => (err ? reject(err) : resolve(answer!))));
