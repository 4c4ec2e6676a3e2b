/**
 * Domain errors with a stable `code` (returned by the API as `{ error: { code, message } }`)
 * and the HTTP status it maps to. Messages are written for a human and never carry a secret.
 */
export class FleetError extends Error {
  constructor(
    readonly code: string,
    readonly httpStatus: number,
    message: string,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

export class NotFoundError extends FleetError {
  constructor(message: string) {
    super("not_found", 404, message);
  }
}

export class ValidationError extends FleetError {
  constructor(
    message: string,
    /** Structured detail the API may return beside the message, e.g. `{ issues }` or `{ rows }`. */
    readonly details?: Record<string, unknown>,
  ) {
    super("invalid_input", 400, message);
  }
}

/** A schema issue as zod reports it; only the path and the message are used. */
export interface InputIssue {
  path: readonly PropertyKey[];
  message: string;
}

/** One sentence from schema issues: "email: must be an email address; name: must not be empty". */
export function describeIssues(issues: readonly InputIssue[]): string {
  return issues
    .map((i) => (i.path.length > 0 ? `${i.path.map(String).join(".")}: ${i.message}` : i.message))
    .join("; ");
}

export class ConflictError extends FleetError {
  constructor(message: string) {
    super("conflict", 409, message);
  }
}

export function isFleetError(err: unknown): err is FleetError {
  return err instanceof FleetError;
}
