import { maskSecrets } from "../log.js";
import { outboundProblem } from "../outbound.js";
import type { InstanceAddress } from "./types.js";

/** Thrown for an address that cannot be used to build a provider URL; a caller mistake, never retried. */
export class InvalidAddressError extends Error {
  readonly code = "invalid_address";
  override name = "InvalidAddressError";
}

/**
 * Validates an instance's apiUrl and returns its canonical form (scheme://host[:port], no
 * trailing slash). The error message echoes the input masked, because operators sometimes
 * paste a full method URL that carries the token.
 */
export function parseApiUrl(text: string): string {
  const shown = JSON.stringify(maskSecrets(String(text).slice(0, 200)));
  let url: URL;
  try {
    url = new URL(String(text).trim());
  } catch {
    throw new InvalidAddressError(`apiUrl ${shown} is not a URL: expected e.g. https://7103.api.greenapi.com`);
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") {
    throw new InvalidAddressError(`apiUrl ${shown} must start with https:// (or http:// for a local simulator)`);
  }
  const problem = outboundProblem(url);
  if (problem) throw new InvalidAddressError(`apiUrl ${shown} ${problem}`);
  if (url.pathname !== "/" || url.search !== "" || url.hash !== "") {
    throw new InvalidAddressError(
      `apiUrl ${shown} must be only scheme and host (e.g. https://7103.api.greenapi.com), without a path, query or fragment`,
    );
  }
  return url.origin;
}

const ID_INSTANCE = /^\d{1,20}$/;
// URL-unreserved characters only: the token is placed in a path segment unencoded, and
// maskSecrets() recognises it there by the segment boundaries.
const TOKEN = /^[A-Za-z0-9._~-]{1,256}$/;
const METHOD = /^[A-Za-z]{1,64}$/;

export function parseIdInstance(text: string): string {
  const id = String(text).trim();
  if (!ID_INSTANCE.test(id)) {
    throw new InvalidAddressError(`idInstance ${JSON.stringify(id.slice(0, 40))} must be digits only, e.g. 7103000001`);
  }
  return id;
}

/** Validates every part of an address and returns it in canonical form. */
export function parseAddress(addr: InstanceAddress): InstanceAddress {
  if (!TOKEN.test(addr.token)) {
    throw new InvalidAddressError(
      "apiTokenInstance must be 1-256 characters from letters, digits, '.', '_', '~' and '-'",
    );
  }
  return { apiUrl: parseApiUrl(addr.apiUrl), idInstance: parseIdInstance(addr.idInstance), token: addr.token };
}

/** {apiUrl}/waInstance{idInstance}/{method}/{token}: carries the token, mask before showing. */
export function methodUrl(addr: InstanceAddress, method: string): string {
  if (!METHOD.test(method)) throw new InvalidAddressError(`method ${JSON.stringify(method)} must be letters only`);
  const a = parseAddress(addr);
  return `${a.apiUrl}/waInstance${a.idInstance}/${method}/${a.token}`;
}

/** The QR websocket URL: scanqrcode with https→wss and http→ws. Carries the token. */
export function qrSocketUrl(addr: InstanceAddress): string {
  return methodUrl(addr, "scanqrcode").replace(/^http/, "ws");
}
