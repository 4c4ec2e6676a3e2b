import type { FastifyInstance } from "fastify";
import { z } from "zod";
import { listAlerts } from "../../fleet/instances/alert-list.js";
import type { FleetContext } from "../../fleet/context.js";
import { plainText } from "../../fleet/validate.js";
import { limit } from "../input.js";
import { errorResponses, zodRoutes, listOf, record } from "./route-schema.js";

const alertsQuery = z
  .object({
    instance: plainText(200).optional().describe("our instance id or its idInstance"),
    state: plainText(64).optional().describe("a provider state, e.g. blocked"),
    all: z.enum(["true", "false"], "all must be true or false").transform((v) => v === "true").optional().describe("ended alerts too"),
    limit: limit(10_000),
  })
  .strict();

/** Alerts about instances' provider states: the open ones, or with `all=true` the ended ones too. */
export async function alertRoutes(app: FastifyInstance, ctx: FleetContext): Promise<void> {
  zodRoutes(app).get(
    "/alerts",
    { schema: { summary: "alerts about instances' provider states", querystring: alertsQuery, response: { 200: listOf("alerts", record("alert")), ...errorResponses } } },
    async (req) => ({ alerts: await listAlerts(ctx, req.query) }),
  );
}
