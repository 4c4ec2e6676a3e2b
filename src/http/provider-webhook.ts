import type { FastifyInstance } from "fastify";
import type { FleetContext } from "../fleet/context.js";
import { handleProviderWebhook, openProviderHooks } from "../fleet/triggers/provider-webhook.js";

/** GREEN-API's inbound webhook. Authenticated per instance by its webhook token, not the admin token. */
export async function providerWebhookRoute(app: FastifyInstance, opts: { ctx: FleetContext }): Promise<void> {
  const hooks = openProviderHooks(opts.ctx);
  // Runs once the server stopped taking requests: the webhooks already in are written and answered.
  app.addHook("onClose", () => hooks.close());
  app.post("/hooks/greenapi", async (req) => handleProviderWebhook(hooks, req.body, req.headers.authorization));
}
