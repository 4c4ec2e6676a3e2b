import { bareHost } from "./outbound-guard.js";

/**
 * Where the daemon may send a request it was configured to make (a provider apiUrl, an operator's
 * webhook): not to link-local addresses, where cloud metadata services answer with credentials,
 * nor to the unspecified address. Loopback and private networks stay allowed: a self-hosted
 * provider or receiver lives there. This reads the URL's text, to refuse what is typed; where a
 * name resolves to is checked at every connect (outbound-guard.ts).
 */
const METADATA_NAMES = new Set(["metadata", "metadata.google.internal", "metadata.azure.internal", "instance-data"]);

/** Why `url` may not be called, or null. */
export function outboundProblem(url: URL): string | null {
  if (url.username !== "" || url.password !== "") return "must not contain a user name or password";
  const host = bareHost(url.hostname.toLowerCase());
  if (METADATA_NAMES.has(host.replace(/\.$/, ""))) return "must not point at a cloud metadata service";
  if (/^169\.254\.\d+\.\d+$/.test(host) || /^fe[89ab][0-9a-f]?:/.test(host) || /^::ffff:a9fe:/.test(host)) {
    return "must not point at a link-local address (cloud metadata lives there)";
  }
  if (host === "0.0.0.0" || host === "::") return "must not point at the unspecified address";
  return null;
}

/** A URL as it may be shown: a user name and password stored by an older version are masked. */
export function shownAddress(address: string): string {
  return address.replace(/^(https?:\/\/)[^/@]*@/i, "$1***@");
}
