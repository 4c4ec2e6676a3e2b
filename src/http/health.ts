import type { FastifyInstance } from "fastify";
import type { Registry } from "prom-client";
import type { FleetContext } from "../fleet/context.js";
import { registerFleetGauges } from "../fleet/observe/fleet-gauges.js";
import { requireBearer } from "./auth.js";
import { TimedOutError, within } from "../lib/deadline.js";

/** A readiness probe must answer before the orchestrator's own timeout, even with a dependency hung. */
const CHECK_TIMEOUT_MS = 2_000;

type CheckResult = "ok" | "timeout" | "error";

/** /healthz: the process answers. /readyz: it can reach PostgreSQL and Redis. /metrics: Prometheus. */
export async function healthRoutes(app: FastifyInstance, opts: { ctx: FleetContext; metrics: Registry }): Promise<void> {
  const { ctx, metrics } = opts;

  app.get("/healthz", async () => ({ status: "ok" }));

  app.get("/readyz", async (req, reply) => {
    const [postgres, redis] = await Promise.all([
      check(() => ctx.db.$queryRaw`SELECT 1`),
      check(() => ctx.queues.connection.ping()),
    ]);
    const ready = postgres === "ok" && redis === "ok";
    if (!ready) req.log.warn({ postgres, redis }, "not ready");
    return reply.status(ready ? 200 : 503).send({ status: ready ? "ready" : "unavailable", checks: { postgres, redis } });
  });

  // This process's counters and histograms, and the fleet-wide gauges read (cached) at scrape time.
  registerFleetGauges(ctx, metrics);
  const token = ctx.config.QRFLEET_METRICS_TOKEN;
  app.get("/metrics", { onRequest: token === undefined ? [] : [requireBearer(ctx, token, "metrics token")] }, async (_req, reply) =>
    reply.type(metrics.contentType).send(await metrics.metrics()),
  );
}

async function check(probe: () => Promise<unknown>): Promise<CheckResult> {
  try {
    await within(probe(), CHECK_TIMEOUT_MS);
    return "ok";
  } catch (err) {
    return err instanceof TimedOutError ? "timeout" : "error";
  }
}
