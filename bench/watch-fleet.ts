import { createHash } from "node:crypto";
import { generateInstances } from "../src/simulator/instances.js";

/**
 * The fleet of a watch phase, derived from a few numbers, so the orchestrator (its CSV), the peers
 * (the simulator) and the bare poller each make the same 100,000 instances without shipping them
 * over IPC.
 */
export interface FleetSpec {
  count: number;
  idPrefix: string;
  seed: string;
  /** Give every instance a provider webhook token (the CSV's webhookToken column). */
  webhookTokens: boolean;
}

export interface WatchInstance {
  idInstance: string;
  token: string;
  webhookToken?: string;
}

export function watchInstances(spec: FleetSpec): WatchInstance[] {
  const instances = generateInstances(spec.count, { idPrefix: spec.idPrefix, seed: spec.seed });
  if (!spec.webhookTokens) return instances;
  return instances.map((i) => ({ ...i, webhookToken: createHash("sha256").update(`qrfleet-bench-hook:${spec.seed}:${i.idInstance}`).digest("hex").slice(0, 40) }));
}

/** Rows per imported file: a large fleet comes in several files, each a CLI call of bounded size. */
export const IMPORT_CHUNK = 10_000;

/** CSV files of at most IMPORT_CHUNK rows each, with the header `apiUrl,idInstance,token[,webhookToken]`. */
export function importCsvChunks(instances: readonly WatchInstance[], apiUrl: string): string[] {
  const withTokens = instances.some((i) => i.webhookToken !== undefined);
  const header = withTokens ? "apiUrl,idInstance,token,webhookToken" : "apiUrl,idInstance,token";
  const row = (i: WatchInstance) => [apiUrl, i.idInstance, i.token, ...(withTokens ? [i.webhookToken ?? ""] : [])].join(",");
  const chunks: string[] = [];
  for (let from = 0; from < instances.length; from += IMPORT_CHUNK) {
    chunks.push([header, ...instances.slice(from, from + IMPORT_CHUNK).map(row)].join("\n") + "\n");
  }
  return chunks;
}
