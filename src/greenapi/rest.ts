import { request, type Dispatcher } from "undici";
import { z } from "zod";
import { deadline } from "../lib/deadline.js";
import { maskSecrets } from "../log.js";
import { retryAfterMs } from "../lib/retry-after.js";
import { decodePng, MAX_FRAME_BYTES } from "./frames.js";
import {
  describeCause,
  errorForStatus,
  GreenApiError,
  ProviderProtocolError,
  ProviderRateLimitedError,
  ProviderUnavailableError,
} from "./errors.js";
import { rateLimitFallbackMs, waitFor, type CallLimiter } from "./pace.js";
import { saveSettingsSchema, settingsBody, webhookSettingsSchema, type WebhookSettings } from "./settings.js";
import { toInstanceState, type InstanceAddress, type InstanceState } from "./types.js";
import { methodUrl, parseAddress } from "./urls.js";

export type RestQr = { type: "qrCode"; png: Buffer } | { type: "alreadyLogged" } | { type: "error"; message: string };

export interface GreenApiClient {
  /** Unknown states come back as "unknown" with the provider's word in `raw`. */
  getStateInstance(signal?: AbortSignal): Promise<{ state: InstanceState; raw: string }>;
  /** One QR snapshot (the REST fallback to the websocket). */
  qr(signal?: AbortSignal): Promise<RestQr>;
  logout(signal?: AbortSignal): Promise<boolean>;
  reboot(signal?: AbortSignal): Promise<boolean>;
  /** Phone-number pairing: `phoneNumber` in international form, digits (a leading + and spaces are allowed). */
  getAuthorizationCode(phoneNumber: string, signal?: AbortSignal): Promise<{ status: boolean; code: string }>;
  /** The linked phone (digits, null when none or unreadable) and the state, from `getWaSettings`. */
  getWaSettings(signal?: AbortSignal): Promise<{ phone: string | null; state: InstanceState }>;
  /** The instance's webhook address, token and state-webhook flag, from `getSettings`. */
  getSettings(signal?: AbortSignal): Promise<WebhookSettings>;
  /** `setSettings`: true when the provider says it saved them. It reboots the instance. */
  setSettings(patch: Partial<WebhookSettings>, signal?: AbortSignal): Promise<boolean>;
}

export interface GreenApiClientOptions {
  /** Bound on each call, body included, in ms. */
  timeoutMs: number;
  /** Keep-alive connections to the provider. Default: undici's global agent */
  dispatcher?: Dispatcher;
  /** Paces calls per instance and method and per host, across daemons. Default: no pacing */
  limiter?: CallLimiter;
  /** Answers of 429 waited out (as Retry-After says) before ProviderRateLimitedError. Default: 3 */
  rateLimitRetries?: number;
  /** The longest Retry-After honoured, in ms; a longer one is cut to this. Default: 60000 */
  retryAfterMaxMs?: number;
}

/** A provider's answer, whatever its status, with the Retry-After a 429 may carry. */
export interface ProviderAnswer {
  status: number;
  text: string;
  retryAfter: string | string[] | undefined;
}

const stateSchema = z.object({ stateInstance: z.string().min(1).max(100) });
const logoutSchema = z.object({ isLogout: z.boolean() });
const rebootSchema = z.object({ isReboot: z.boolean() });
const authCodeSchema = z.object({
  status: z.boolean(),
  code: z
    .string()
    .nullish()
    .transform((v) => v ?? ""),
});
const waSettingsSchema = z.object({ phone: z.unknown().optional(), stateInstance: z.string().min(1).max(100) });
const qrSchema = z.object({ type: z.string(), message: z.unknown() });
const PHONE = /^\d{5,15}$/;

export function createGreenApiClient(addr: InstanceAddress, opts: GreenApiClientOptions): GreenApiClient {
  const address = parseAddress(addr);

  const retries = opts.rateLimitRetries ?? 3;
  const retryAfterMaxMs = opts.retryAfterMaxMs ?? 60_000;

  /**
   * One call, paced. A 429 is the provider asking for time, not a failure: the wait it names (or a
   * doubling fallback) is taken, the limiter makes every daemon hold off too, and the call goes again.
   */
  async function call<T>(method: string, schema: z.ZodType<T>, signal?: AbortSignal, body?: unknown): Promise<T> {
    const url = methodUrl(address, method);
    const what = `${body === undefined ? "GET" : "POST"} ${maskSecrets(url)}`;
    for (let retry = 0; ; retry++) {
      await opts.limiter?.acquire(method, signal);
      const { status, text, retryAfter } = await requestText(url, what, { ...opts, signal, body });
      if (status === 429) {
        const waitMs = retryAfterMs(retryAfter, new Date(), retryAfterMaxMs) ?? rateLimitFallbackMs(retry, retryAfterMaxMs);
        if (retry >= retries) throw new ProviderRateLimitedError(`${what} answered HTTP 429 (too many requests), ${retry + 1} in a row`, waitMs);
        await opts.limiter?.holdOff(method, waitMs);
        await waitFor(waitMs, signal);
        continue;
      }
      if (status < 200 || status > 299) throw errorForStatus(status, what);
      return validate(text, schema, what, status);
    }
  }

  return {
    async getStateInstance(signal) {
      const { stateInstance } = await call("getStateInstance", stateSchema, signal);
      return { state: toInstanceState(stateInstance), raw: stateInstance };
    },
    async qr(signal) {
      return toRestQr(await call("qr", qrSchema, signal), `GET ${maskSecrets(methodUrl(address, "qr"))}`);
    },
    async logout(signal) {
      return (await call("logout", logoutSchema, signal)).isLogout;
    },
    async reboot(signal) {
      return (await call("reboot", rebootSchema, signal)).isReboot;
    },
    async getAuthorizationCode(phoneNumber, signal) {
      const digits = String(phoneNumber).replace(/^\+/, "").replace(/[\s-]/g, "");
      if (!PHONE.test(digits)) {
        throw new RangeError("phoneNumber must be 5-15 digits in international form, e.g. 79001234567");
      }
      return call("getAuthorizationCode", authCodeSchema, signal, { phoneNumber: Number(digits) });
    },
    async getWaSettings(signal) {
      const { phone, stateInstance } = await call("getWaSettings", waSettingsSchema, signal);
      const digits = typeof phone === "string" || typeof phone === "number" ? String(phone).replace(/^\+/, "") : "";
      return { phone: PHONE.test(digits) ? digits : null, state: toInstanceState(stateInstance) };
    },
    getSettings: (signal) => call("getSettings", webhookSettingsSchema, signal),
    async setSettings(patch, signal) {
      return (await call("setSettings", saveSettingsSchema, signal, settingsBody(patch))).saveSettings;
    },
  };
}

export interface RequestTextOptions extends GreenApiClientOptions {
  signal?: AbortSignal;
  /** Sent as JSON with POST; GET without it. */
  body?: unknown;
  /** Largest body accepted, in bytes. Default: MAX_FRAME_BYTES */
  maxBytes?: number;
}

/**
 * One call to the provider, its body read within bounds, whatever its status. Every failure is a
 * GreenApiError naming `what` (a masked URL), except the caller's own abort, whose reason is thrown.
 */
export async function requestText(url: string, what: string, opts: RequestTextOptions): Promise<ProviderAnswer> {
  const { body, signal } = opts;
  const timeout = deadline(opts.timeoutMs, signal);
  try {
    // undici's request rather than fetch: a sweep makes thousands of these a minute, at a
    // third of the CPU each; it follows no redirect (a 3xx is refused by the caller).
    const res = await request(url, {
      method: body === undefined ? "GET" : "POST",
      headers: body === undefined ? { accept: "application/json" } : { accept: "application/json", "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: timeout.signal,
      dispatcher: opts.dispatcher,
    });
    const text = await readBounded(res, what, opts.maxBytes ?? MAX_FRAME_BYTES);
    return { status: res.statusCode, text, retryAfter: res.headers["retry-after"] };
  } catch (err) {
    throw translateFetchError(err, what, opts.timeoutMs, signal);
  } finally {
    timeout.clear();
  }
}

function toRestQr(answer: z.infer<typeof qrSchema>, what: string): RestQr {
  switch (answer.type) {
    case "qrCode": {
      const png = decodePng(answer.message);
      if (typeof png === "string") throw new ProviderProtocolError(`${what}: ${png}`);
      return { type: "qrCode", png };
    }
    case "alreadyLogged":
      return { type: "alreadyLogged" };
    case "error": {
      const message = typeof answer.message === "string" ? answer.message : JSON.stringify(answer.message ?? "");
      return { type: "error", message: maskSecrets(message.slice(0, 500)) };
    }
    default:
      throw new ProviderProtocolError(`${what} answered an unexpected type ${JSON.stringify(answer.type.slice(0, 64))}`);
  }
}

/** Reads the body, refusing answers far larger than any the protocol has (`limit` bytes); `whatFor` names the call in an error. */
export async function readBounded(res: Dispatcher.ResponseData, whatFor: string | (() => string), limit: number): Promise<string> {
  const what = () => (typeof whatFor === "string" ? whatFor : whatFor());
  const declared = Number(res.headers["content-length"] ?? "0");
  if (declared > limit) {
    res.body.destroy();
    throw new ProviderProtocolError(`${what()} answered a body of ${declared} bytes, over ${limit}`, res.statusCode);
  }
  // A declared length within the limit is held to by the HTTP client: the body is read whole, at once.
  if (declared > 0) return res.body.text();
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of res.body) {
    size += (chunk as Buffer).byteLength;
    if (size > limit) {
      res.body.destroy();
      throw new ProviderProtocolError(`${what()} answered a body over ${limit} bytes`, res.statusCode);
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString("utf8");
}

function translateFetchError(err: unknown, what: string, timeoutMs: number, caller?: AbortSignal): unknown {
  if (err instanceof GreenApiError) return err;
  // The caller's own abort is not a provider failure: hand its reason back unchanged.
  if (caller?.aborted) return caller.reason;
  if (err instanceof Error && (err.name === "TimeoutError" || err.name === "AbortError")) {
    return new ProviderUnavailableError(`${what} timed out after ${timeoutMs} ms`);
  }
  return new ProviderUnavailableError(`${what} failed (${describeCause(err)})`);
}

function validate<T>(text: string, schema: z.ZodType<T>, what: string, status: number): T {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new ProviderProtocolError(`${what} answered HTTP ${status} with a body that is not JSON`, status);
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    const fields = parsed.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`).join("; ");
    throw new ProviderProtocolError(`${what} answered HTTP ${status} with an unexpected body (${fields})`, status);
  }
  return parsed.data;
}
