import { lookup as dnsLookup } from "node:dns/promises";
import { BlockList, isIP, type LookupFunction } from "node:net";
import { Agent, buildConnector } from "undici";

/**
 * Where the daemon may connect, judged by the address it actually connects to: a name is resolved
 * once, every address it resolves to is checked, and the connection goes to the checked address
 * (TLS still verifies the name), so a name that resolves to a metadata service, or changes its
 * answer between a check and a connect, gets nowhere. Loopback and private networks are refused
 * unless the deployment allows them (a self-hosted provider or receiver lives there).
 */

type Net = "ipv4" | "ipv6";

function blockList(subnets: ReadonlyArray<[string, number, Net]>): BlockList {
  const list = new BlockList();
  for (const [net, prefix, family] of subnets) list.addSubnet(net, prefix, family);
  return list;
}

/** No server is ever called here: unspecified, link-local (cloud metadata), cloud metadata elsewhere, multicast, reserved. */
const NEVER = blockList([
  ["0.0.0.0", 8, "ipv4"], ["169.254.0.0", 16, "ipv4"], ["100.100.100.200", 32, "ipv4"], ["224.0.0.0", 3, "ipv4"],
  ["::", 128, "ipv6"], ["fe80::", 10, "ipv6"], ["fd00:ec2::254", 128, "ipv6"], ["ff00::", 8, "ipv6"],
]);

/** Loopback, private, shared (carrier-grade NAT) and special-purpose networks. IPv4 entries also match their ::ffff: forms. */
const PRIVATE = blockList([
  ["127.0.0.0", 8, "ipv4"], ["10.0.0.0", 8, "ipv4"], ["172.16.0.0", 12, "ipv4"], ["192.168.0.0", 16, "ipv4"],
  ["100.64.0.0", 10, "ipv4"], ["192.0.0.0", 24, "ipv4"], ["198.18.0.0", 15, "ipv4"],
  ["::1", 128, "ipv6"], ["fc00::", 7, "ipv6"], ["64:ff9b:1::", 48, "ipv6"],
]);

/** The eight 16-bit groups of an IPv6 address (a trailing dotted quad included). */
function groupsOf(ip: string): number[] {
  let text = ip.toLowerCase();
  const quad = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (quad) {
    const [a, b, c, d] = quad.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, quad.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = text.split("::") as [string, string | undefined];
  const part = (s: string | undefined) => (s ? s.split(":").map((g) => parseInt(g, 16)) : []);
  const [h, t] = [part(head), part(tail)];
  return tail === undefined ? h : [...h, ...new Array<number>(8 - h.length - t.length).fill(0), ...t];
}

const quadOf = (hi: number, lo: number) => `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;

/** The IPv4 address a NAT64 (64:ff9b::/96) or 6to4 (2002::/16) address carries; null for any other. */
function carriedIpv4(ip: string): string | null {
  const g = groupsOf(ip);
  if (g[0] === 0x64 && g[1] === 0xff9b && g.slice(2, 6).every((x) => x === 0)) return quadOf(g[6]!, g[7]!);
  if (g[0] === 0x2002) return quadOf(g[1]!, g[2]!);
  return null;
}

/** Why the daemon may not connect to `ip`, or null; `knob` names the setting that allows private addresses. */
export function addressProblem(ip: string, allowPrivate: boolean, knob: string): string | null {
  const family: Net = isIP(ip) === 6 ? "ipv6" : "ipv4";
  const carried = family === "ipv6" ? carriedIpv4(ip) : null;
  if (carried !== null) return addressProblem(carried, allowPrivate, knob);
  if (NEVER.check(ip, family)) return `${ip} is link-local, cloud metadata, multicast or unspecified: no server may be called there`;
  if (!allowPrivate && PRIVATE.check(ip, family)) return `${ip} is a loopback or private address (${knob}=true allows those)`;
  return null;
}

/** A connection refused for the address it would have gone to. */
export class AddressRefusedError extends Error {
  override name = "AddressRefusedError";
  readonly code = "ADDRESS_REFUSED";
}

/** What a test may stand in for: the resolver, and the connect that follows a check. */
export interface OutboundHooks {
  /** Every address `hostname` resolves to. Default: the system resolver. */
  resolve?: (hostname: string) => Promise<string[]>;
  /** Connects to an address that passed. Default: undici's connector (TCP, TLS on the original name). */
  connect?: buildConnector.connector;
}

export interface OutboundPolicy {
  allowPrivate: boolean;
  /** The setting that allows private addresses, named in refusals. */
  knob: string;
  hooks?: OutboundHooks;
}

/** A URL's hostname without the brackets of an IPv6 address. */
export const bareHost = (hostname: string) => hostname.replace(/^\[|\]$/g, "");

const systemResolve = async (hostname: string) => (await dnsLookup(hostname, { all: true, verbatim: true })).map((a) => a.address);

/** The address to connect to for `hostname`: every address it resolves to must pass, or AddressRefusedError. */
export async function checkedAddress(hostname: string, policy: OutboundPolicy): Promise<string> {
  const host = bareHost(hostname);
  const addresses = isIP(host) ? [host] : await (policy.hooks?.resolve ?? systemResolve)(host);
  if (addresses.length === 0) throw new AddressRefusedError(`${host} resolves to no address`);
  for (const address of addresses) {
    const problem = addressProblem(address, policy.allowPrivate, policy.knob);
    if (problem) throw new AddressRefusedError(isIP(host) ? problem : `${host} resolves to ${problem}`);
  }
  return addresses[0]!;
}

/** An undici agent whose every connection goes to a checked address. */
export function guardedAgent(policy: OutboundPolicy, options: Agent.Options = {}): Agent {
  const connectTo = policy.hooks?.connect ?? buildConnector({});
  const connect: buildConnector.connector = (opts, callback) => {
    const name = bareHost(opts.hostname);
    checkedAddress(opts.hostname, policy).then(
      (address) => connectTo({ ...opts, hostname: address, servername: opts.servername ?? (isIP(name) ? undefined : name) }, callback),
      (err: Error) => callback(err, null),
    );
  };
  return new Agent({ ...options, connect });
}

/** For clients that resolve through net.connect (the QR websocket): the checked address, as dns.lookup answers. */
export function guardedLookup(policy: OutboundPolicy): LookupFunction {
  return (hostname, options, callback) => {
    checkedAddress(hostname, policy).then(
      (address) => {
        const family = isIP(address);
        if ((options as { all?: boolean }).all) (callback as (e: null, a: Array<{ address: string; family: number }>) => void)(null, [{ address, family }]);
        else callback(null, address, family);
      },
      (err: Error) => callback(err as NodeJS.ErrnoException, "", 0),
    );
  };
}
