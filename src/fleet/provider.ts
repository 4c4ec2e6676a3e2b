import type { Instance } from "../db.js";
import { createGreenApiClient, type GreenApiClient } from "../greenapi/rest.js";
import type { InstanceAddress } from "../greenapi/types.js";
import type { FleetContext } from "./context.js";

/** A token sealed under another key cannot be used; only a human can set it again. */
export const UNREADABLE_TOKEN =
  "the stored token cannot be decrypted (was QRFLEET_SECRET_KEY changed?): set it again with qrfleet instance update --token";

/** The instance's provider address with its token opened, or null (and a log line) when it cannot be. */
export function instanceAddress(
  ctx: FleetContext,
  inst: Pick<Instance, "id" | "apiUrl" | "idInstance"> & { tokenCiphertext: Uint8Array },
): InstanceAddress | null {
  try {
    return { apiUrl: inst.apiUrl, idInstance: inst.idInstance, token: ctx.box.open(inst.tokenCiphertext) };
  } catch {
    ctx.log.warn({ instanceId: inst.id }, UNREADABLE_TOKEN);
    return null;
  }
}

/** The provider's REST client for one instance, with the configured timeout. */
export function providerClient(ctx: FleetContext, addr: InstanceAddress): GreenApiClient {
  return createGreenApiClient(addr, { timeoutMs: ctx.config.QRFLEET_HTTP_TIMEOUT_MS });
}
