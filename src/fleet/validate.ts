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
 * Characters no label needs and a reader cannot see: control characters (PostgreSQL refuses a NUL,
 * an escape sequence rewrites the terminal of whoever lists the fleet) and format characters
 * (bidi controls that show a label reversed, zero-width characters that make two labels look
 * alike), with the line and paragraph separators.
 */
export const UNSEEN_CHARACTERS = /[\p{Cc}\p{Cf}\u2028\u2029]/u;
export const UNSEEN_MESSAGE = "must not contain control or invisible formatting characters (bidi controls, zero-width characters, line separators)";

/** Text a person typed: trimmed, bounded, and free of characters nobody can see (UNSEEN_CHARACTERS). */
export function plainText(max: number) {
  return z
    .string()
    .trim()
    .max(max, `must be at most ${max} characters`)
    .refine((v) => !UNSEEN_CHARACTERS.test(v), UNSEEN_MESSAGE);
}

/** `plainText` that must not be empty once trimmed: a name, a reference. */
export function requiredText(max: number) {
  return plainText(max).pipe(z.string().min(1, "must not be empty"));
}
