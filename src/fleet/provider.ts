import type { Instance } from "../db.js";
import { createGreenApiClient, type GreenApiClient } from "../greenapi/rest.js";
import type { InstanceAddress } from "../greenapi/types.js";
import type { FleetContext } from "./context.js";
import { providerPace } from "./provider-pace.js";

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

/** The provider's rate limits, shared by every daemon through Redis, and its 429s waited out. */
function clientOptions(ctx: FleetContext, inst: Pick<Instance, "apiUrl" | "idInstance">) {
  const { config } = ctx;
  const pace = { redis: ctx.queues.connection, prefix: ctx.queues.prefix, log: ctx.log };
  return {
    timeoutMs: config.QRFLEET_HTTP_TIMEOUT_MS,
    limiter: providerPace(
      { ...pace, instanceIntervalMs: config.QRFLEET_PROVIDER_CALL_INTERVAL_MS, hostRps: config.QRFLEET_PROVIDER_HOST_RPS },
      inst.apiUrl,
      inst.idInstance,
    ),
    rateLimitRetries: config.QRFLEET_PROVIDER_RATE_LIMIT_RETRIES,
    retryAfterMaxMs: config.QRFLEET_PROVIDER_RETRY_AFTER_MAX_MS,
  };
}
