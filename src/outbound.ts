import { isIP } from "node:net";
import { addressProblem, bareHost } from "./outbound-guard.js";

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
  // An address typed as such is judged as the connect would judge it; private ones are allowed here (the connect decides).
  if (isIP(host) !== 0 && addressProblem(host, true, "") !== null) {
    return "must not point at a link-local, cloud metadata, multicast or unspecified address";
  }
  return null;
}

/** A URL as it may be shown: a user name and password stored by an older version are masked. */
export function shownAddress(address: string): string {
  return address.replace(/^(https?:\/\/)[^/@]*@/i, "$1***@");
}
