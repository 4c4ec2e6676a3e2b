import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { ZodError } from "zod";
import { describeIssues, isFleetError } from "../fleet/errors.js";

/** Every error leaves as `{ "error": { "code", "message", "details"? } }` with a stable code. */
export interface ApiError {
  status: number;
  code: string;
  message: string;
  details?: Record<string, unknown>;
}

export function sendError(reply: FastifyReply, status: number, code: string, message: string, details?: Record<string, unknown>) {
  return reply.status(status).send({ error: { code, message, ...(details && { details }) } });
}

/** Fastify's own request errors, by code, mapped to ours. */
const FASTIFY_ERRORS: Record<string, Omit<ApiError, "message"> & { message?: string }> = {
  FST_ERR_CTP_INVALID_JSON_BODY: { status: 400, code: "invalid_json", message: "the body is not valid JSON" },
  FST_ERR_CTP_EMPTY_JSON_BODY: { status: 400, code: "invalid_json", message: "the body is empty but its content-type is JSON" },
  FST_ERR_CTP_BODY_TOO_LARGE: { status: 413, code: "payload_too_large" },
  FST_ERR_CTP_INVALID_MEDIA_TYPE: { status: 415, code: "unsupported_media_type" },
};

export function toApiError(err: unknown): ApiError {
  if (isFleetError(err)) {
    const details = (err as { details?: Record<string, unknown> }).details;
    return { status: err.httpStatus, code: err.code, message: err.message, ...(details && { details }) };
  }
  if (err instanceof ZodError) return { status: 400, code: "invalid_input", message: describeIssues(err.issues) };
  const fe = err as Partial<FastifyError>;
  const known = fe.code ? FASTIFY_ERRORS[fe.code] : undefined;
  if (known) return { ...known, message: known.message ?? String(fe.message) };
  if (fe.validation) return { status: 400, code: "invalid_input", message: String(fe.message) };
  // Other fastify request errors (bad content-length, bad URL encoding) are the client's and safe to show.
  if (fe.code?.startsWith("FST_") && fe.statusCode && fe.statusCode >= 400 && fe.statusCode < 500) {
    return { status: fe.statusCode, code: "bad_request", message: String(fe.message) };
  }
  return { status: 500, code: "internal", message: "internal error; the server log has the details" };
}

export function installErrorHandlers(app: FastifyInstance): void {
  app.setErrorHandler((err: unknown, req: FastifyRequest, reply: FastifyReply) => {
    const e = toApiError(err);
    // The logger masks secrets in every line it writes, error text included.
    if (e.status >= 500) req.log.error({ err, route: req.routeOptions.url }, "request failed");
    return sendError(reply, e.status, e.code, e.message, e.details);
  });
  app.setNotFoundHandler((_req, reply) => sendError(reply, 404, "not_found", "no such route"));
}

/**
 * JSON bodies: an empty body means "no body" (POST …/sessions takes an optional one);
 * anything else goes through fastify's parser, which guards against prototype poisoning.
 */
export function installBodyParsers(app: FastifyInstance): void {
  const parseJson = app.getDefaultJsonParser("error", "error");
  app.removeContentTypeParser("application/json");
  app.addContentTypeParser("application/json", { parseAs: "string" }, (req, body, done) => {
    if (typeof body === "string" && body.trim() === "") return done(null, undefined);
    parseJson(req, body as string, done);
  });
  app.addContentTypeParser("text/csv", { parseAs: "string" }, (_req, body, done) => done(null, body));
}
