import type { FastifyInstance } from "fastify";
import { z } from "zod";
import { ConfigError } from "../../config.js";
import { FleetError } from "../../fleet/errors.js";
import { syncPartnerAccount } from "../../fleet/partner/partner-sync.js";
import { GreenApiError } from "../../greenapi/errors.js";
import { importInstances } from "../../fleet/instances/import.js";
import { showInstanceWithAlerts } from "../../fleet/instances/alert-list.js";
import { addInstance, listInstances, removeInstance, updateInstance } from "../../fleet/instances/instances.js";
import type { FleetContext } from "../../fleet/context.js";
import { enqueueSession } from "../../fleet/sessions/sessions.js";
import { reviewWebhooks } from "../../fleet/instances/webhook-setup.js";
import { instanceUpdateSchema, newInstanceSchema } from "../../fleet/instances/instance-input.js";
import { limit, refParams } from "../input.js";
import { checkedInHandler, errorResponses, listOf, record, zodRoutes } from "./route-schema.js";
import { session } from "./sessions.js";
import { plainText } from "../../fleet/validate.js";

/**
 * An import is the one request allowed to be large: its bytes are held (about 600,000 CSV rows at
 * most), never its parsed rows, which are read from them as a stream. A larger fleet is imported
 * with `qrfleet instance import`, which streams the file from disk.
 */
export const IMPORT_BODY_LIMIT = 64 * 1024 * 1024;

const listQuery = z
  .object({
    state: plainText(64).optional(),
    attention: z.enum(["true", "false"], "attention must be true or false").transform((v) => v === "true").optional(),
    limit: limit(10_000),
    offset: z.coerce.number().int().min(0, "offset must be 0 or more").optional(),
  })
  .strict();

const syncBody = z.object({ dryRun: z.boolean("dryRun must be true or false").optional() }).strict();

const webhooksBody = z
  .object({ apply: z.boolean("apply must be true or false").describe("false: only read and report (the plan); true: set ours where unset or incomplete") })
  .strict();

const webhooksReport = z
  .looseObject({
    apply: z.boolean(),
    hookUrl: z.string().describe("where ours points: this fleet's provider webhook under QRFLEET_PUBLIC_URL"),
    instances: z.array(z.looseObject({ idInstance: z.string(), setup: z.string().describe("unset, ours, ours_incomplete, foreign or error"), host: z.string().nullable().describe("a foreign webhook's host, all that is shown of it") })),
    totals: z.record(z.string(), z.number().int()),
    failed: z.boolean().describe("a reading or a change failed, or a change did not stick"),
  })
  .describe("each enabled instance's provider webhook, and with apply what was done");

/** POST …/sessions takes no options today; an empty object is accepted so clients may send one. */
const enqueueBody = z.object({}).strict();

const instance = record("instance", {
  idInstance: z.string(),
  apiUrl: z.string(),
  label: z.string().nullable(),
  expectedPhone: z.string().nullable(),
  cron: z.string().nullable(),
  enabled: z.boolean(),
  lastState: z.string().nullable().describe("the provider's last known state, e.g. authorized or notAuthorized"),
});

/** Documents the body; the import reads and checks it row by row itself (src/fleet/instances/import.ts). */
const importBody = checkedInHandler(
  z
    .union([z.string().describe("CSV with a header row"), z.array(z.record(z.string(), z.unknown()))])
    .describe("CSV with a header row (text/csv) or a JSON array of instances (application/json), read as a stream and checked row by row"),
);

export async function instanceRoutes(app: FastifyInstance, ctx: FleetContext): Promise<void> {
  const api = zodRoutes(app);
  api.get(
    "/instances",
    { schema: { summary: "list instances", querystring: listQuery, response: { 200: listOf("instances", instance), ...errorResponses } } },
    async (req) => ({ instances: await listInstances(ctx, req.query) }),
  );

  api.post(
    "/instances",
    { schema: { summary: "add an instance", body: newInstanceSchema, response: { 201: instance, ...errorResponses } } },
    async (req, reply) => reply.status(201).send(await addInstance(ctx, req.body)),
  );

  api.get(
    "/instances/:ref",
    { schema: { summary: "an instance by our id or its idInstance, with its open alerts", params: refParams, response: { 200: instance, ...errorResponses } } },
    async (req) => showInstanceWithAlerts(ctx, req.params.ref),
  );

  api.patch(
    "/instances/:ref",
    { schema: { summary: "change an instance; null clears an optional field", params: refParams, body: checkedInHandler(instanceUpdateSchema), response: { 200: instance, ...errorResponses } } },
    // The instance is looked up before its update is checked: an unknown instance is a 404 whatever the body says.
    async (req) => updateInstance(ctx, req.params.ref, req.body ?? {}),
  );

  api.delete(
    "/instances/:ref",
    { schema: { summary: "remove an instance and its history", params: refParams, response: { 200: z.looseObject({}).describe("what was removed"), ...errorResponses } } },
    async (req) => removeInstance(ctx, req.params.ref),
  );

  await app.register(importRoute, { ctx });

  api.post(
    "/instances/sync",
    { schema: { summary: "add the partner account's instances", body: syncBody, response: { 200: z.looseObject({}).describe("what was added or would be"), ...errorResponses } } },
    async (req) => {
      try {
        return await syncPartnerAccount(ctx, { dryRun: req.body.dryRun });
      } catch (err) {
        throw syncFailure(err);
      }
    },
  );

  api.post(
    "/instances/webhooks",
    {
      schema: {
        summary: "read (apply false) or set up (apply true) every enabled instance's provider state webhook; setSettings reboots, so instances with a session open are skipped",
        body: webhooksBody,
        response: { 200: webhooksReport, ...errorResponses },
      },
    },
    async (req) => reviewWebhooks(ctx, { apply: req.body.apply }),
  );

  api.post(
    "/instances/:ref/sessions",
    { schema: { summary: "start a QR session now", params: refParams, body: enqueueBody, response: { 200: session, 201: session, ...errorResponses } } },
    async (req, reply) => {
      const { session: view, created } = await enqueueSession(ctx, req.params.ref, "admin");
      return reply.status(created ? 201 : 200).send(view);
    },
  );
}

/** A partner token not set is the server's configuration (409); the partner API's refusal or garbage is a bad gateway (502). */
function syncFailure(err: unknown): unknown {
  if (err instanceof ConfigError) return new FleetError("not_configured", 409, err.message);
  if (err instanceof GreenApiError) return new FleetError(err.code, 502, err.message);
  return err;
}

/** In a scope of its own: here CSV and JSON bodies arrive as bytes, for the import to parse as a stream. */
async function importRoute(app: FastifyInstance, opts: { ctx: FleetContext }): Promise<void> {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser(["text/csv", "application/json"], { parseAs: "buffer", bodyLimit: IMPORT_BODY_LIMIT }, (_req, body, done) => done(null, body));
  zodRoutes(app).post(
    "/instances/import",
    {
      bodyLimit: IMPORT_BODY_LIMIT,
      schema: { summary: "import instances, all or nothing", consumes: ["text/csv", "application/json"], body: importBody, response: { 201: z.looseObject({ created: z.number().int() }), ...errorResponses } },
    },
    async (req, reply) => reply.status(201).send(await importInstances(opts.ctx, Buffer.isBuffer(req.body) ? [req.body] : "")),
  );
}
