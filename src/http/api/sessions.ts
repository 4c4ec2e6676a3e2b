import type { FastifyInstance } from "fastify";
import { z } from "zod";
import type { FleetContext } from "../../fleet/context.js";
import { listDeliveries } from "../../fleet/operators/deliveries.js";
import { cancelSession, enqueueSessions, listSessions, showSession } from "../../fleet/sessions/sessions.js";
import { fleetStatus } from "../../fleet/observe/status.js";
import { idParams, limit } from "../input.js";
import { plainText } from "../../fleet/validate.js";
import { errorResponses, zodRoutes, listOf, record } from "./route-schema.js";
import { uuidSchema } from "../../lib/uuid.js";

const sessionsQuery = z
  .object({ instance: plainText(200).optional(), status: plainText(64).optional(), limit: limit(10_000) })
  .strict();

const deliveriesQuery = z
  .object({ session: z.string().trim().min(1).optional(), status: z.string().trim().min(1).optional(), limit: limit(10_000) })
  .strict();

/** Many sessions at once: every unlinked instance, or these instances (our ids). */
const bulkBody = z.union([
  z.object({ allUnlinked: z.literal(true) }).strict(),
  z.object({ instances: z.array(uuidSchema("each instance must be an instance id (a UUID)")).min(1).max(50_000) }).strict(),
], { error: 'send {"allUnlinked": true} or {"instances": [ids]}' });

export const session = record("QR session", {
  instanceId: z.string(),
  trigger: z.enum(["schedule", "sweep", "provider", "admin"]),
  attempt: z.number().int(),
  status: z.string().describe("queued, running, authorized, already_logged, wrong_number, timed_out, failed or cancelled"),
});

const bulkEnqueued = z
  .object({ created: z.number().int(), alreadyOpen: z.number().int(), notFound: z.number().int().optional().describe("ids given that are no instance") })
  .describe("sessions created, and instances that had one open already");

/** Sessions, their deliveries and the fleet summary: what an admin reads when a phone is unlinked. */
export async function sessionRoutes(app: FastifyInstance, ctx: FleetContext): Promise<void> {
  const api = zodRoutes(app);
  api.get(
    "/sessions",
    { schema: { summary: "list QR sessions, newest first", querystring: sessionsQuery, response: { 200: listOf("sessions", session), ...errorResponses } } },
    async (req) => ({ sessions: await listSessions(ctx, req.query) }),
  );

  api.post(
    "/sessions",
    { schema: { summary: "start sessions for many instances", body: bulkBody, response: { 200: bulkEnqueued, ...errorResponses } } },
    async (req) => enqueueSessions(ctx, "allUnlinked" in req.body ? { allUnlinked: true } : { ids: req.body.instances }, "admin"),
  );

  api.get(
    "/sessions/:id",
    { schema: { summary: "a session with its QR codes and deliveries", params: idParams, response: { 200: session, ...errorResponses } } },
    async (req) => showSession(ctx, req.params.id),
  );

  api.post(
    "/sessions/:id/cancel",
    { schema: { summary: "cancel a session that has not ended", params: idParams, response: { 200: session, ...errorResponses } } },
    async (req) => cancelSession(ctx, req.params.id),
  );

  api.get(
    "/deliveries",
    { schema: { summary: "list deliveries (the outbox)", querystring: deliveriesQuery, response: { 200: listOf("deliveries", record("delivery")), ...errorResponses } } },
    async (req) => ({ deliveries: await listDeliveries(ctx, req.query) }),
  );

  api.get(
    "/status",
    { schema: { summary: "the fleet in numbers", response: { 200: z.looseObject({}).describe("counts of instances and sessions by state"), 401: errorResponses[401] } } },
    async () => fleetStatus(ctx),
  );
}
