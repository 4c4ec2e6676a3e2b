import { maskSecrets } from "../log.js";
import { AddressRefusedError } from "../outbound-guard.js";

/**
 * Errors of talking to the provider. `code` is stable (stored, returned by the API, used in
 * metrics); `transient` tells a queue worker whether a retry can help. Messages are masked
 * at construction, so a token cannot leave through one; callers still build them only from
 * masked URLs and error codes, never from raw third-party messages.
 */
export class GreenApiError extends Error {
  override name = "GreenApiError";
  readonly code: string = "greenapi_error";
  readonly transient: boolean = true;
  /** HTTP status of the provider's answer, when there was one. */
  readonly status: number | undefined;

  constructor(message: string, status?: number) {
    super(maskSecrets(message));
    this.status = status;
  }
}

/** 401/403: the token is wrong or revoked. */
export class InvalidTokenError extends GreenApiError {
  override name = "InvalidTokenError";
  override readonly code = "invalid_token";
  override readonly transient = false;
}

/** 404: no such instance at this apiUrl. */
export class UnknownInstanceError extends GreenApiError {
  override name = "UnknownInstanceError";
  override readonly code = "unknown_instance";
  override readonly transient = false;
}

/** 5xx, 429, timeouts and network errors: the provider may answer later. */
export class ProviderUnavailableError extends GreenApiError {
  override name = "ProviderUnavailableError";
  override readonly code = "provider_unavailable";
  override readonly transient = true;
}

/** 429 after every wait it asked for: transient, and `retryAfterMs` says when to come back. */
export class ProviderRateLimitedError extends GreenApiError {
  override name = "ProviderRateLimitedError";
  override readonly code = "provider_rate_limited";
  override readonly transient = true;

  constructor(
    message: string,
    readonly retryAfterMs: number,
  ) {
    super(message, 429);
  }
}

/** The provider answered, but not with what the protocol says (not JSON, wrong shape, huge frame). */
export class ProviderProtocolError extends GreenApiError {
  override name = "ProviderProtocolError";
  override readonly code = "provider_protocol";
  override readonly transient = true;
}

/** The error for a non-2xx HTTP answer; `what` is e.g. "GET <masked url>". */
export function errorForStatus(status: number, what: string): GreenApiError {
  const text = `${what} answered HTTP ${status}`;
  if (status === 401 || status === 403) return new InvalidTokenError(`${text}: the instance token is not accepted`, status);
  if (status === 404) return new UnknownInstanceError(`${text}: no such instance at this apiUrl`, status);
  if (status >= 500 || status === 429) return new ProviderUnavailableError(text, status);
  return new ProviderProtocolError(text, status);
}

/** A short, token-free description of a network-level failure: its errno code, never its text. */
export function describeCause(err: unknown): string {
  let e: unknown = err;
  // undici wraps the socket error in `cause` ("fetch failed" → ECONNREFUSED).
  for (let depth = 0; depth < 3 && e instanceof Error; depth++) {
    // Names and addresses only, no secret: the refusal says what to change.
    if (e instanceof AddressRefusedError) return `refused: ${e.message}`;
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string" && /^[A-Z0-9_]{2,40}$/.test(code)) return code;
    e = e.cause;
  }
  return "network error";
}
