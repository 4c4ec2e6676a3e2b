import type { Instance } from "../../db.js";
import { createGreenApiClient, type GreenApiClient } from "../../greenapi/rest.js";
import type { InstanceAddress } from "../../greenapi/types.js";
import type { FleetContext } from "../context.js";
import { providerPace } from "./provider-pace.js";
import { hostBudgetOf } from "./host-budget.js";
import { providerAgentOf } from "./outbound.js";

/** A token sealed under another key cannot be used; only a human can set it again. */
export const UNREADABLE_TOKEN =
  "the stored token cannot be decrypted (was QRFLEET_SECRET_KEY changed?): set it again with qrfleet instance update --token";

/** How the fleet reaches one instance at the provider: its address (token opened) and its REST client. */
export interface Provider {
  address: InstanceAddress;
  client: GreenApiClient;
}

/**
 * The one way to reach an instance at the provider. A token that cannot be decrypted gives null
 * and a warning naming the instance; every caller treats null as "cannot act until an admin sets the token".
 */
export function providerFor(
  ctx: FleetContext,
  inst: Pick<Instance, "id" | "apiUrl" | "idInstance"> & { tokenCiphertext: Uint8Array },
): Provider | null {
  let token: string;
  try {
    token = ctx.box.open(inst.tokenCiphertext);
  } catch {
    ctx.log.warn({ instanceId: inst.id }, UNREADABLE_TOKEN);
    return null;
  }
  const address = { apiUrl: inst.apiUrl, idInstance: inst.idInstance, token };
  let client: GreenApiClient | undefined;
  return {
    address,
    // Most attempts only open the websocket: the REST client is made when first asked for.
    get client() {
      return (client ??= createGreenApiClient(address, clientOptions(ctx, inst)));
    },
  };
}

/**
 * The provider's rate limits: one call per method and instance across every daemon (in Redis),
 * this daemon's share of the host's budget (counted here), and its 429s waited out.
 */
function clientOptions(ctx: FleetContext, inst: Pick<Instance, "apiUrl" | "idInstance">) {
  const { config } = ctx;
  const pace = { redis: ctx.queues.connection, prefix: ctx.queues.prefix, log: ctx.log };
  const perInstance = providerPace({ ...pace, instanceIntervalMs: config.QRFLEET_PROVIDER_CALL_INTERVAL_MS, hostRps: 0 }, inst.apiUrl, inst.idInstance);
  const budget = hostBudgetOf(ctx);
  return {
    timeoutMs: config.QRFLEET_HTTP_TIMEOUT_MS,
    dispatcher: providerAgentOf(ctx),
    limiter: {
      async acquire(method: string, signal?: AbortSignal) {
        await budget.take(inst.apiUrl);
        await perInstance?.acquire(method, signal);
      },
      holdOff: async (method: string, ms: number) => perInstance?.holdOff(method, ms),
    },
    rateLimitRetries: config.QRFLEET_PROVIDER_RATE_LIMIT_RETRIES,
    retryAfterMaxMs: config.QRFLEET_PROVIDER_RETRY_AFTER_MAX_MS,
  };
}
