import type { FastifyInstance } from "fastify";
import type { FleetContext } from "../../fleet/context.js";
import { requireBearer } from "../auth.js";
import { sendError } from "../errors.js";
import { alertRoutes } from "./alerts.js";
import { deliveryRoutes } from "./deliveries.js";
import { instanceRoutes } from "./instances.js";
import { collectOpenApi, openApiRoute } from "./openapi.js";
import { operatorRoutes } from "./operators.js";
import { useZodSchemas } from "./route-schema.js";
import { sessionRoutes } from "./sessions.js";

/** The admin API, mounted under /api: every route, unknown ones included, needs the bearer token. */
export async function adminApi(app: FastifyInstance, opts: { ctx: FleetContext }): Promise<void> {
  app.addHook("onRequest", requireBearer(opts.ctx, opts.ctx.config.QRFLEET_ADMIN_TOKEN));
  app.setNotFoundHandler((_req, reply) => sendError(reply, 404, "not_found", "no such route"));
  useZodSchemas(app);
  await collectOpenApi(app);
  await instanceRoutes(app, opts.ctx);
  await sessionRoutes(app, opts.ctx);
  await operatorRoutes(app, opts.ctx);
  await alertRoutes(app, opts.ctx);
  await deliveryRoutes(app, opts.ctx);
  openApiRoute(app);
}
