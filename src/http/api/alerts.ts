import type { FastifyInstance } from "fastify";
import { z } from "zod";
import { listAlerts } from "../../fleet/alert-list.js";
import type { FleetContext } from "../../fleet/context.js";
import { plainText } from "../../fleet/validate.js";
import { limit, parseInput } from "../input.js";

const alertsQuery = z
  .object({
    instance: plainText(200).optional(),
    state: plainText(64).optional(),
    all: z.enum(["true", "false"], "all must be true or false").transform((v) => v === "true").optional(),
    limit: limit(10_000),
  })
  .strict();

/** Alerts about instances' provider states: the open ones, or with `all=true` the ended ones too. */
export async function alertRoutes(app: FastifyInstance, ctx: FleetContext): Promise<void> {
  app.get("/alerts", async (req) => ({ alerts: await listAlerts(ctx, parseInput(alertsQuery, req.query)) }));
}
