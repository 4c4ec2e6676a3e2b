import type { Dispatcher } from "undici";
import { z } from "zod";
import { maskSecrets, registerSecret } from "../log.js";
import { GreenApiError, InvalidTokenError, ProviderProtocolError, ProviderUnavailableError } from "./errors.js";
import { requestText } from "./rest.js";

/**
 * The partner API: one token for every instance of an account, at
 * {partnerApiUrl}/partner/{method}/{partnerToken}. Only `getInstances` is spoken here.
 */

/** One instance of the account, as getInstances lists it, in the words qrfleet uses. */
export interface PartnerInstance {
  idInstance: string;
  /** apiTokenInstance: a secret, like every instance token. */
  token: string;
  /** The name given in the console or to createInstance; null when empty. */
  name: string | null;
  /** whatsapp, telegram, v3 (MAX)…; null when the answer leaves it out. */
  typeInstance: string | null;
  deleted: boolean;
  /** The instance's host, when the answer names one: the documented answer does not. */
  apiUrl: string | null;
}

/** An entry that could not be read; `idInstance` when at least that could. */
export interface UnreadableEntry {
  /** 0-based place in the listing. */
  index: number;
  idInstance: string | null;
  problem: string;
}

export interface PartnerListing {
  instances: PartnerInstance[];
  unreadable: UnreadableEntry[];
}

export interface PartnerClient {
  getInstances(signal?: AbortSignal): Promise<PartnerListing>;
}

export interface PartnerClientOptions {
  /** {partnerApiUrl}, e.g. https://api.green-api.com */
  partnerApiUrl: string;
  /** A secret: it controls every instance of the account. */
  partnerToken: string;
  /** Bound on the call, body included, in ms. */
  timeoutMs: number;
  dispatcher?: Dispatcher;
}

/** The partner API says what went wrong with a `code` it chose, often under HTTP 200. */
export class PartnerApiError extends GreenApiError {
  override name = "PartnerApiError";
  override readonly code = "partner_api_error";
  override readonly transient = false;
}

// An entry is a few hundred bytes: 64 MiB holds an account of 100,000 instances and more.
const MAX_LISTING_BYTES = 64 * 1024 * 1024;
const TOKEN = /^[A-Za-z0-9._~-]{1,256}$/;
const ID_INSTANCE = z.union([z.number().int().positive().max(Number.MAX_SAFE_INTEGER), z.string().regex(/^\d{1,20}$/)]).transform(String);

const entrySchema = z.object({
  idInstance: ID_INSTANCE,
  apiTokenInstance: z.string().min(1).max(256),
  name: z.string().max(10_000).nullish(),
  typeInstance: z.string().max(64).nullish(),
  deleted: z.boolean(),
  apiUrl: z.string().max(2_000).nullish(),
});
const errorSchema = z.object({ code: z.union([z.number(), z.string()]), description: z.unknown().optional() });

export function createPartnerClient(opts: PartnerClientOptions): PartnerClient {
  if (!TOKEN.test(opts.partnerToken)) {
    throw new InvalidTokenError("the partner token must be 1-256 characters from letters, digits, '.', '_', '~' and '-'");
  }
  registerSecret(opts.partnerToken);
  const base = opts.partnerApiUrl.replace(/\/+$/, "");
  return {
    async getInstances(signal) {
      const url = `${base}/partner/getInstances/${opts.partnerToken}`;
      const what = `GET ${maskSecrets(url)}`;
      const { status, text } = await requestText(url, what, { timeoutMs: opts.timeoutMs, dispatcher: opts.dispatcher, signal, maxBytes: MAX_LISTING_BYTES });
      return readListing(text, status, what);
    },
  };
}

/** The answer, whatever its HTTP status: an error may come as a non-2xx or as HTTP 200 with a `code`. */
function readListing(text: string, status: number, what: string): PartnerListing {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    if (status < 200 || status > 299) throw errorForCode(status, null, `${what} answered HTTP ${status}`);
    throw new ProviderProtocolError(`${what} answered HTTP ${status} with a body that is not JSON`, status);
  }
  const refusal = errorSchema.safeParse(json);
  if (refusal.success && !Array.isArray(json)) {
    throw errorForCode(Number(refusal.data.code), refusal.data.description, `${what} answered HTTP ${status} with code ${String(refusal.data.code).slice(0, 20)}`);
  }
  if (status < 200 || status > 299) throw errorForCode(status, null, `${what} answered HTTP ${status}`);
  if (!Array.isArray(json)) {
    throw new ProviderProtocolError(`${what} answered HTTP ${status} with a body that is neither a list of instances nor an error`, status);
  }
  return readEntries(json);
}

function readEntries(entries: unknown[]): PartnerListing {
  const listing: PartnerListing = { instances: [], unreadable: [] };
  entries.forEach((entry, index) => {
    const parsed = entrySchema.safeParse(entry);
    if (parsed.success) return void listing.instances.push(toInstance(parsed.data));
    const id = ID_INSTANCE.safeParse((entry as { idInstance?: unknown } | null)?.idInstance);
    const problem = parsed.error.issues.map((i) => `${i.path.join(".") || "(entry)"}: ${i.message}`).join("; ");
    listing.unreadable.push({ index, idInstance: id.success ? id.data : null, problem });
  });
  return listing;
}

function toInstance(e: z.infer<typeof entrySchema>): PartnerInstance {
  const name = e.name?.trim() ?? "";
  return {
    idInstance: e.idInstance,
    token: e.apiTokenInstance,
    name: name === "" ? null : name,
    typeInstance: e.typeInstance ?? null,
    deleted: e.deleted,
    apiUrl: e.apiUrl ? e.apiUrl : null,
  };
}

/** The provider's own words, bounded and without control characters; masked by the error itself. */
function quoted(description: unknown): string {
  if (typeof description !== "string" || description.trim() === "") return "";
  return `: ${JSON.stringify(description.replace(/\p{Cc}/gu, " ").trim().slice(0, 200))}`;
}

function errorForCode(code: number, description: unknown, text: string): GreenApiError {
  const said = quoted(description);
  if (code === 401 || code === 403) {
    return new InvalidTokenError(`${text}${said}: the partner token is not accepted (check GREENAPI_PARTNER_TOKEN)`, code);
  }
  if (code === 429 || code >= 500) return new ProviderUnavailableError(`${text}${said}: try again later`, code);
  return new PartnerApiError(`${text}${said}`, code);
}
