import { z } from "zod";
import { parseInput as parse, requiredText } from "../fleet/validate.js";

/** Query strings and small bodies validated at the edge (absent counts as empty); the fleet functions validate the rest. */
export function parseInput<T>(schema: z.ZodType<T>, value: unknown): T {
  return parse(schema, value ?? {});
}

export const limit = (max: number) => z.coerce.number().int("limit must be a whole number").min(1).max(max).optional();

export const refParams = z.object({ ref: requiredText(200) });
export const idParams = z.object({ id: requiredText(200) });
