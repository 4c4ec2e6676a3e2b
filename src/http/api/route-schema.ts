import type { FastifyInstance, FastifySchemaCompiler, FastifySerializerCompiler, FastifyTypeProvider } from "fastify";
import { z } from "zod";
import { parseInput } from "../input.js";

/**
 * The admin API's route schemas are zod objects: the same object validates a request part and
 * describes it in /api/openapi.json. A bad part leaves as today's ValidationError (400
 * `invalid_input`, one sentence naming each bad field, `details.issues`), never as fastify's
 * own validation text, and an absent query or body counts as empty, as parseInput always did.
 */
const zodValidator: FastifySchemaCompiler<z.ZodType> = ({ schema }) => (data) => {
  if (handlerChecks.has(schema)) return { value: data };
  try {
    return { value: parseInput(schema, data) };
  } catch (err) {
    return { error: err as Error };
  }
};

const handlerChecks = new WeakSet<z.ZodType>();

/**
 * A documented part that the fleet function checks itself, later: where what it looks up first
 * decides the answer (an unknown instance is a 404 whatever its update says). The part arrives as sent.
 */
export function checkedInHandler(schema: z.ZodType): z.ZodType<unknown> {
  const own = schema.describe(schema.description ?? "checked after the addressed record is found");
  handlerChecks.add(own);
  return own;
}

/** Response schemas are documentation: replies are sent as they are, as before they were declared. */
const plainJson: FastifySerializerCompiler<unknown> = () => (data) => JSON.stringify(data);

export function useZodSchemas(app: FastifyInstance): void {
  app.setValidatorCompiler(zodValidator);
  app.setSerializerCompiler(plainJson);
}

/**
 * Handlers see the parsed request parts as their schemas' output types. Replies stay typed by the
 * fleet functions that make them: the response schemas describe them, loosely, for readers.
 */
interface ZodRequests extends FastifyTypeProvider {
  validator: this["schema"] extends z.ZodType ? z.output<this["schema"]> : unknown;
  serializer: unknown;
}

export const zodRoutes = (app: FastifyInstance) => app.withTypeProvider<ZodRequests>();

/** `{ "error": { "code", "message", "details"? } }`, the body of every error (src/http/errors.ts). */
export const apiErrorSchema = z
  .object({
    error: z.object({
      code: z.string().describe("stable, machine-readable: invalid_input, unauthorized, not_found, conflict, …"),
      message: z.string().describe("one sentence for a person; never carries a secret"),
      details: z.record(z.string(), z.unknown()).optional().describe("e.g. { issues: [{ path, message }] } for invalid input"),
    }),
  })
  .describe("an error");

/** The error answers every admin route may give, beside its own success codes. */
export const errorResponses = {
  400: apiErrorSchema.describe("invalid input: the message names each bad field"),
  401: apiErrorSchema.describe("no or wrong admin token"),
  404: apiErrorSchema.describe("no such instance, operator, session, delivery or channel"),
  409: apiErrorSchema.describe("conflicts with what is stored"),
} as const;

/** A stored record as JSON; its main fields are named, the rest pass through unlisted. */
export const record = (what: string, fields: z.ZodRawShape = {}) =>
  z.looseObject({ id: z.string().describe(`the ${what}'s id`), ...fields }).describe(`a ${what}`);

/** The `{ <key>: [...] }` envelope of a listing. */
export const listOf = (key: string, item: z.ZodType) => z.object({ [key]: z.array(item) });
