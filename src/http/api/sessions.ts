import type { FastifyInstance } from "fastify";
import { z } from "zod";
import type { FleetContext } from "../../fleet/context.js";
import { listDeliveries } from "../../fleet/deliveries.js";
import { cancelSession, listSessions, showSession } from "../../fleet/sessions.js";
import { fleetStatus } from "../../fleet/status.js";
import { idParams, limit, parseInput } from "../input.js";

const sessionsQuery = z
  .object({ instance: z.string().trim().min(1).max(200).optional(), status: z.string().trim().min(1).optional(), limit: limit(10_000) })
  .strict();

const deliveriesQuery = z
  .object({ session: z.string().trim().min(1).optional(), status: z.string().trim().min(1).optional(), limit: limit(10_000) })
  .strict();

/** Sessions, their deliveries and the fleet summary: what an admin reads when a phone is unlinked. */
export async function sessionRoutes(app: FastifyInstance, ctx: FleetContext): Promise<void> {
  app.get("/sessions", async (req) => ({ sessions: await listSessions(ctx, parseInput(sessionsQuery, req.query)) }));

  app.get("/sessions/:id", async (req) => showSession(ctx, parseInput(idParams, req.params).id));

  app.post("/sessions/:id/cancel", async (req) => cancelSession(ctx, parseInput(idParams, req.params).id));

  app.get("/deliveries", async (req) => ({ deliveries: await listDeliveries(ctx, parseInput(deliveriesQuery, req.query)) }));

  app.get("/status", async () => fleetStatus(ctx));
}
