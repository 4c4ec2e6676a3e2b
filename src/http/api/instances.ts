import type { FastifyInstance } from "fastify";
import { z } from "zod";
import { ConfigError } from "../../config.js";
import { FleetError, ValidationError } from "../../fleet/errors.js";
import { syncPartnerAccount } from "../../fleet/partner-sync.js";
import { GreenApiError } from "../../greenapi/errors.js";
import { importInstances } from "../../fleet/import.js";
import { showInstanceWithAlerts } from "../../fleet/alert-list.js";
import { addInstance, listInstances, removeInstance, updateInstance } from "../../fleet/instances.js";
import type { FleetContext } from "../../fleet/context.js";
import { enqueueSession } from "../../fleet/sessions.js";
import { limit, parseInput, refParams } from "../input.js";
import { plainText } from "../../fleet/validate.js";

/** An import is the one request allowed to be large: thousands of rows of CSV or JSON. */
export const IMPORT_BODY_LIMIT = 5 * 1024 * 1024;

const listQuery = z
  .object({
    state: plainText(64).optional(),
    attention: z.enum(["true", "false"], "attention must be true or false").transform((v) => v === "true").optional(),
    limit: limit(10_000),
    offset: z.coerce.number().int().min(0, "offset must be 0 or more").optional(),
  })
  .strict();

const syncBody = z.object({ dryRun: z.boolean("dryRun must be true or false").optional() }).strict();

/** POST …/sessions takes no options today; an empty object is accepted so clients may send one. */
const enqueueBody = z.object({}).strict();

export async function instanceRoutes(app: FastifyInstance, ctx: FleetContext): Promise<void> {
  app.get("/instances", async (req) => ({ instances: await listInstances(ctx, parseInput(listQuery, req.query)) }));

  app.post("/instances", async (req, reply) => reply.status(201).send(await addInstance(ctx, req.body)));

  app.get("/instances/:ref", async (req) => showInstanceWithAlerts(ctx, parseInput(refParams, req.params).ref));

  app.patch("/instances/:ref", async (req) => updateInstance(ctx, parseInput(refParams, req.params).ref, req.body ?? {}));

  app.delete("/instances/:ref", async (req) => removeInstance(ctx, parseInput(refParams, req.params).ref));

  app.post("/instances/import", { bodyLimit: IMPORT_BODY_LIMIT }, async (req, reply) =>
    reply.status(201).send(await importInstances(ctx, importText(req.body))),
  );

  app.post("/instances/sync", async (req) => {
    const { dryRun } = parseInput(syncBody, req.body);
    try {
      return await syncPartnerAccount(ctx, { dryRun });
    } catch (err) {
      throw syncFailure(err);
    }
  });

  app.post("/instances/:ref/sessions", async (req, reply) => {
    const { ref } = parseInput(refParams, req.params);
    parseInput(enqueueBody, req.body);
    const { session, created } = await enqueueSession(ctx, ref, "admin");
    return reply.status(created ? 201 : 200).send(session);
  });
}

/** A partner token not set is the server's configuration (409); the partner API's refusal or garbage is a bad gateway (502). */
function syncFailure(err: unknown): unknown {
  if (err instanceof ConfigError) return new FleetError("not_configured", 409, err.message);
  if (err instanceof GreenApiError) return new FleetError(err.code, 502, err.message);
  return err;
}

/** CSV arrives as text (content-type text/csv); JSON arrives parsed and goes back to the shared import parser. */
function importText(body: unknown): string {
  if (typeof body === "string") return body;
  if (Array.isArray(body)) return JSON.stringify(body);
  throw new ValidationError("send CSV with content-type text/csv, or a JSON array of instances");
}
