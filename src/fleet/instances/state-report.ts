import type { Instance } from "../../db.js";
import type { InstanceState } from "../../greenapi/types.js";

/** One word of the provider about an instance's state, from the sweep, its webhook or the check after a scan. */
export interface StateReport {
  instance: Pick<Instance, "id">;
  state: InstanceState;
  /** When the provider was in this state. */
  at: Date;
  /**
   * How coarse `at` is: the provider's webhook timestamps have whole seconds, so a report in the
   * same second as the recorded one is not older than it. 0 for our own clock.
   */
  precisionMs?: number;
  /** The provider's webhook said it: it is also kept as the webhook's last word (`hookState`, `hookSeenAt`). */
  viaHook?: boolean;
}
