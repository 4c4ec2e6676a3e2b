import type { FastifyInstance } from "fastify";
import type { FleetContext } from "../fleet/context.js";
import { handleProviderWebhook } from "../fleet/provider-webhook.js";

/** GREEN-API's inbound webhook. Authenticated per instance by its webhook token, not the admin token. */
export async function providerWebhookRoute(app: FastifyInstance, opts: { ctx: FleetContext }): Promise<void> {
  app.post("/hooks/greenapi", async (req) => handleProviderWebhook(opts.ctx, req.body, req.headers.authorization));
}
