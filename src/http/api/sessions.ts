import type { FastifyInstance } from "fastify";
import { z } from "zod";
import type { FleetContext } from "../../fleet/context.js";
import { listDeliveries } from "../../fleet/deliveries.js";
import { cancelSession, enqueueSessions, listSessions, showSession } from "../../fleet/sessions.js";
import { fleetStatus } from "../../fleet/status.js";
import { idParams, limit, parseInput } from "../input.js";
import { plainText } from "../../fleet/validate.js";

const sessionsQuery = z
  .object({ instance: plainText(200).optional(), status: plainText(64).optional(), limit: limit(10_000) })
  .strict();

const deliveriesQuery = z
  .object({ session: z.string().trim().min(1).optional(), status: z.string().trim().min(1).optional(), limit: limit(10_000) })
  .strict();

/** Many sessions at once: every unlinked instance, or these instances (our ids). */
const bulkBody = z.union([
  z.object({ allUnlinked: z.literal(true) }).strict(),
  z.object({ instances: z.array(z.uuid("each instance must be an instance id (a UUID)")).min(1).max(50_000) }).strict(),
], { error: 'send {"allUnlinked": true} or {"instances": [ids]}' });

/** Sessions, their deliveries and the fleet summary: what an admin reads when a phone is unlinked. */
export async function sessionRoutes(app: FastifyInstance, ctx: FleetContext): Promise<void> {
  app.get("/sessions", async (req) => ({ sessions: await listSessions(ctx, parseInput(sessionsQuery, req.query)) }));

  app.post("/sessions", async (req) => {
    const body = parseInput(bulkBody, req.body);
    return enqueueSessions(ctx, "allUnlinked" in body ? { allUnlinked: true } : { ids: body.instances }, "admin");
  });

  app.get("/sessions/:id", async (req) => showSession(ctx, parseInput(idParams, req.params).id));

  app.post("/sessions/:id/cancel", async (req) => cancelSession(ctx, parseInput(idParams, req.params).id));

  app.get("/deliveries", async (req) => ({ deliveries: await listDeliveries(ctx, parseInput(deliveriesQuery, req.query)) }));

  app.get("/status", async () => fleetStatus(ctx));
}
