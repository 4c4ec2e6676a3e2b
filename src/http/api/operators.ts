import type { FastifyInstance } from "fastify";
import { z } from "zod";
import type { FleetContext } from "../../fleet/context.js";
import { resolveInstance } from "../../fleet/instances.js";
import { addChannel, addOperator, assign, getOperator, listOperators, removeOperator, unassign, type ChannelInput, type OperatorInput } from "../../fleet/operators.js";
import { parseInput, refParams } from "../input.js";

const ref = z.string().trim().min(1, "must not be empty").max(200);

/** `instance` is our id or an idInstance; `operator` is an operator id or name. */
const assignmentBody = z
  .object({ instance: ref, operator: ref, tier: z.number("tier must be a number").optional() })
  .strict();
const unassignmentInput = assignmentBody.omit({ tier: true });

export async function operatorRoutes(app: FastifyInstance, ctx: FleetContext): Promise<void> {
  app.get("/operators", async () => ({ operators: await listOperators(ctx.db) }));

  // The webhook signing secret is in this response once (generated when not given); it is stored sealed.
  app.post("/operators", async (req, reply) =>
    reply.status(201).send(await addOperator(ctx.db, ctx.box, (req.body ?? {}) as OperatorInput)),
  );

  app.get("/operators/:ref", async (req) => getOperator(ctx.db, parseInput(refParams, req.params).ref));

  app.delete("/operators/:ref", async (req) => removeOperator(ctx.db, parseInput(refParams, req.params).ref));

  // Like an operator's first channels: a generated webhook secret is in this response only.
  app.post("/operators/:ref/channels", async (req, reply) => {
    const { ref: operator } = parseInput(refParams, req.params);
    return reply.status(201).send(await addChannel(ctx.db, ctx.box, operator, (req.body ?? {}) as ChannelInput));
  });

  app.post("/assignments", async (req, reply) => {
    const body = parseInput(assignmentBody, req.body);
    const instance = await resolveInstance(ctx.db, body.instance);
    return reply.status(201).send(await assign(ctx.db, instance.id, body.operator, body.tier));
  });

  app.delete("/assignments", async (req) => {
    const input = parseInput(unassignmentInput, req.body ?? req.query);
    const instance = await resolveInstance(ctx.db, input.instance);
    return unassign(ctx.db, instance.id, input.operator);
  });
}
