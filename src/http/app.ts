import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from "fastify";
import type { Registry } from "prom-client";
import type { FleetContext } from "../fleet/context.js";
import { adminApi } from "./api/index.js";
import { registerDashboard } from "./dashboard.js";
import { installBodyParsers, installErrorHandlers, sendError } from "./errors.js";
import { healthRoutes } from "./health.js";
import { hostAllowList, installHostCheck } from "./host-check.js";
import { registerLivePage } from "./live.js";
import { providerWebhookRoute } from "./provider-webhook.js";
import { queueBoard } from "./queue-board.js";

/** Everything but an import is a small JSON document; the import route raises its own limit. */
export const BODY_LIMIT = 64 * 1024;

/** Scraped every few seconds: logged at debug so they do not drown the session log. */
const PROBES = new Set(["/healthz", "/readyz", "/metrics"]);

export interface HttpAppOptions {
  /** The registry /metrics exposes (observeFleet's). */
  metrics: Registry;
  /** Log one line per request through ctx.log. Default: true. */
  logRequests?: boolean;
}

/**
 * The HTTP face of the fleet: admin API (/api), the provider's webhook (/hooks/greenapi),
 * health, metrics, the queue dashboard and the fleet dashboard (/admin). Built, not listened on: the caller listens.
 */
export async function buildHttpApp(ctx: FleetContext, opts: HttpAppOptions): Promise<FastifyInstance> {
  const log: FastifyBaseLogger = ctx.log.child({ component: "http" });
  const app = Fastify({
    loggerInstance: log,
    // Fastify's own request lines would carry raw URLs; ours (below) name the route pattern only.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: BODY_LIMIT,
    // The router's own answers echo the path, and a live link's path is its credential.
    frameworkErrors: (err, _req, reply) =>
      err.code === "FST_ERR_MAX_PARAM_LENGTH"
        ? sendError(reply, 414, "uri_too_long", "a part of the address is too long; copy the link again from the message you received")
        : sendError(reply, 400, "bad_url", "the address is not valid; copy the link again from the message you received"),
    // A request trickled in a byte at a time must not hold a connection (and a parser) for minutes.
    requestTimeout: ctx.config.QRFLEET_HTTP_REQUEST_TIMEOUT_MS,
    http: {
      headersTimeout: ctx.config.QRFLEET_HTTP_REQUEST_TIMEOUT_MS,
      connectionsCheckingInterval: Math.min(1_000, ctx.config.QRFLEET_HTTP_REQUEST_TIMEOUT_MS),
    },
  });
  if (opts.logRequests !== false) {
    app.addHook("onResponse", async (req, reply) => {
      const route = req.routeOptions.url ?? "(none)";
      const line = { method: req.method, route, status: reply.statusCode, ms: Math.round(reply.elapsedTime) };
      if (PROBES.has(route)) req.log.debug(line, "request");
      else req.log.info(line, "request");
    });
  }
  installHostCheck(app, hostAllowList(ctx.config.QRFLEET_PUBLIC_URL, ctx.config.QRFLEET_ALLOWED_HOSTS));
  installBodyParsers(app);
  installErrorHandlers(app);
  await app.register(healthRoutes, { ctx, metrics: opts.metrics });
  await app.register(providerWebhookRoute, { ctx });
  await app.register(adminApi, { ctx, prefix: "/api" });
  await app.register(queueBoard, { ctx });
  await registerLivePage(app, ctx);
  await registerDashboard(app, ctx);
  return app;
}
