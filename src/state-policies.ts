import { INSTANCE_STATES } from "./greenapi/types.js";

/**
 * What qrfleet does with each provider state, as `QRFLEET_STATE_POLICIES` spells it. Parsed here
 * so config.ts stays a list of settings; applied by fleet/instances/instance-state.ts and fleet/instances/alerts.ts.
 */

/**
 * - `start_session`: start a QR session (a phone must scan).
 * - `end_session`: end the session waiting for a scan as authorized (authorized only).
 * - `alert`: alert the instance's operators at once, once per episode.
 * - `reboot`: after QRFLEET_REBOOT_AFTER_MS in the state, reboot the instance once; alert if it is
 *   still in it QRFLEET_REBOOT_ALERT_AFTER_MS after the reboot.
 * - `warn_unlink`: after QRFLEET_SLEEP_WARN_AFTER_MS in the state, warn that WhatsApp unlinks the
 *   instance QRFLEET_SLEEP_UNLINK_AFTER_MS after the phone went offline, naming that deadline.
 * - `record`: record the state, nothing more.
 * Whatever the policy, a report of another state ends the episode of the one before (and, if it
 * alerted, says "recovered").
 */
export const STATE_POLICIES = ["start_session", "end_session", "alert", "reboot", "warn_unlink", "record"] as const;
export type StatePolicy = (typeof STATE_POLICIES)[number];

/** The states a policy is given for; `unknown` stands for every word of the provider's this version does not know. */
export const POLICY_STATES = [...INSTANCE_STATES, "unknown"] as const;
export type PolicyState = (typeof POLICY_STATES)[number];

export type StatePolicies = Readonly<Record<PolicyState, StatePolicy>>;

/**
 * GREEN-API's own advice per state: a logged-out instance needs
 * a scan; a banned number (`blocked`) and suspended sending (`yellowCard`) need a human now; a
 * `starting` that lasts past its normal 5 minutes wants a reboot, then a human; a phone in
 * `sleepMode` is only a problem once it has been off for days. A state we do not know is recorded.
 */
export const DEFAULT_STATE_POLICIES: StatePolicies = Object.freeze({
  notAuthorized: "start_session",
  authorized: "end_session",
  blocked: "alert",
  yellowCard: "alert",
  starting: "reboot",
  sleepMode: "warn_unlink",
  unknown: "record",
});

/** `state=policy` pairs, comma-separated, over the defaults; throws a sentence naming what is wrong. */
export function parseStatePolicies(text: string): StatePolicies {
  const policies: Record<PolicyState, StatePolicy> = { ...DEFAULT_STATE_POLICIES };
  for (const pair of text.split(",").map((p) => p.trim()).filter((p) => p !== "")) {
    const [state, policy, extra] = pair.split("=").map((p) => p.trim());
    if (!isOneOf(POLICY_STATES, state) || policy === undefined || extra !== undefined) {
      throw new Error(`"${pair.slice(0, 40)}" is not state=policy with a state among ${POLICY_STATES.join(", ")}`);
    }
    if (!isOneOf(STATE_POLICIES, policy)) throw new Error(`the policy of ${state} must be one of ${STATE_POLICIES.join(", ")}`);
    // Ending a session as authorized on any other state's word would record a link that did not happen.
    if (policy === "end_session" && state !== "authorized") throw new Error(`end_session is only for authorized, not ${state}`);
    policies[state] = policy;
  }
  return Object.freeze(policies);
}

function isOneOf<T extends string>(list: readonly T[], value: string | undefined): value is T {
  return value !== undefined && (list as readonly string[]).includes(value);
}
