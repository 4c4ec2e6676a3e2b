import type { FastifyInstance } from "fastify";
import { z } from "zod";
import type { FleetContext } from "../../fleet/context.js";
import { resolveInstance } from "../../fleet/instances/instances.js";
import { addChannel, addOperator, assign, channelSchema, getOperator, listOperators, operatorSchema, removeOperator, unassign } from "../../fleet/operators/operators.js";
import { parseInput, refParams } from "../input.js";
import { errorResponses, listOf, record, zodRoutes } from "./route-schema.js";

const ref = z.string().trim().min(1, "must not be empty").max(200);

/** `instance` is our id or an idInstance; `operator` is an operator id or name. */
const assignmentBody = z
  .object({ instance: ref, operator: ref, tier: z.number("tier must be a number").optional() })
  .strict();
const unassignmentInput = assignmentBody.omit({ tier: true });
/** An unassignment names both sides in the body or, for clients that send no DELETE body, in the query. */
const unassignmentPart = unassignmentInput.partial();

export const channel = record("channel", {
  kind: z.enum(["email", "webhook"]), address: z.string(), enabled: z.boolean(),
  mode: z.enum(["immediate", "digest"]), modeSet: z.boolean().describe("false: the mode is the default for the channel's place"),
});
const operator = record("operator", { name: z.string(), channels: z.array(channel) });
/** The secret is there once, when qrfleet generated it; null otherwise. */
const generatedSecret = z.string().nullable().describe("a generated webhook signing secret, shown only in this answer");
const assignment = z.looseObject({ instanceId: z.string(), operatorId: z.string(), tier: z.number().int() }).describe("an assignment");

export async function operatorRoutes(app: FastifyInstance, ctx: FleetContext): Promise<void> {
  const api = zodRoutes(app);
  api.get("/operators", { schema: { summary: "list operators", response: { 200: listOf("operators", operator), 401: errorResponses[401] } } }, async () => ({
    operators: await listOperators(ctx),
  }));

  // The webhook signing secret is in this response once (generated when not given); it is stored sealed.
  api.post(
    "/operators",
    { schema: { summary: "add an operator with an email, a webhook or both", body: operatorSchema, response: { 201: z.object({ operator, webhookSecret: generatedSecret }), ...errorResponses } } },
    async (req, reply) => reply.status(201).send(await addOperator(ctx, req.body)),
  );

  api.get(
    "/operators/:ref",
    { schema: { summary: "an operator with channels and assignments", params: refParams, response: { 200: operator, ...errorResponses } } },
    async (req) => getOperator(ctx, req.params.ref),
  );

  api.delete(
    "/operators/:ref",
    { schema: { summary: "remove an operator", params: refParams, response: { 200: z.looseObject({}).describe("what was removed"), ...errorResponses } } },
    async (req) => removeOperator(ctx, req.params.ref),
  );

  // Like an operator's first channels: a generated webhook secret is in this response only.
  api.post(
    "/operators/:ref/channels",
    { schema: { summary: "add a channel to an operator", params: refParams, body: channelSchema, response: { 201: z.object({ channel, webhookSecret: generatedSecret }), ...errorResponses } } },
    async (req, reply) => reply.status(201).send(await addChannel(ctx, req.params.ref, req.body)),
  );

  api.post(
    "/assignments",
    { schema: { summary: "assign an instance to an operator", body: assignmentBody, response: { 201: assignment, ...errorResponses } } },
    async (req, reply) => {
      const instance = await resolveInstance(ctx.db, req.body.instance);
      return reply.status(201).send(await assign(ctx, instance.id, req.body.operator, req.body.tier));
    },
  );

  api.delete(
    "/assignments",
    { schema: { summary: "unassign an instance from an operator", body: unassignmentPart, querystring: unassignmentPart, response: { 200: z.looseObject({}).describe("what was removed"), ...errorResponses } } },
    async (req) => {
      const input = parseInput(unassignmentInput, Object.keys(req.body).length > 0 ? req.body : req.query);
      const instance = await resolveInstance(ctx.db, input.instance);
      return unassign(ctx, instance.id, input.operator);
    },
  );
}
