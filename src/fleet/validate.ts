import { z } from "zod";
import { describeIssues, ValidationError } from "./errors.js";

/** How input is checked everywhere: a schema, and a ValidationError naming each bad field. */

/** The parsed value, or a ValidationError: one sentence (after `context`, if given) and `{ issues }` for the API. */
export function parseInput<T>(schema: z.ZodType<T>, value: unknown, context?: string): T {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const issues = parsed.error.issues.map((i) => ({ path: i.path.map(String).join("."), message: i.message }));
  const sentence = describeIssues(parsed.error.issues);
  throw new ValidationError(context ? `${context}: ${sentence}` : sentence, { issues });
}

/**
 * Text a person typed: trimmed, bounded, and free of control characters. PostgreSQL refuses a NUL
 * in text (the request would fail late, as a database error), and an escape sequence in a label
 * would rewrite the terminal of whoever lists the fleet.
 */
export function plainText(max: number) {
  return z
    .string()
    .trim()
    .max(max, `must be at most ${max} characters`)
    .regex(/^[^\p{Cc}]*$/u, "must not contain control characters");
}
