import { z } from "zod";
import { ValidationError, describeIssues } from "../fleet/errors.js";

/** Query strings and small bodies validated at the edge; the fleet functions validate the rest. */
export function parseInput<T>(schema: z.ZodType<T>, value: unknown): T {
  const parsed = schema.safeParse(value ?? {});
  if (parsed.success) return parsed.data;
  const issues = parsed.error.issues.map((i) => ({ path: i.path.map(String).join("."), message: i.message }));
  throw new ValidationError(describeIssues(parsed.error.issues), { issues });
}

export const limit = (max: number) => z.coerce.number().int("limit must be a whole number").min(1).max(max).optional();

export const refParams = z.object({ ref: z.string().trim().min(1).max(200) });
export const idParams = z.object({ id: z.string().trim().min(1).max(200) });
