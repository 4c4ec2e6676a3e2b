import type { NewInstance } from "./instance-input.js";

/**
 * Instances written many at a time (an import, a partner account's sync): one array per column and
 * one `unnest` per batch, so thousands of rows are one statement and one round trip, with no ORM
 * building a query object per row.
 */

/** An instance ready to be written: checked, its secrets sealed. */
export interface SealedInstance {
  apiUrl: string;
  idInstance: string;
  tokenCiphertext: Uint8Array<ArrayBuffer>;
  label: string | null;
  expectedPhone: string | null;
  cron: string | null;
  enabled: boolean;
  maxAttempts: number | null;
  backoffBaseMs: number | null;
  backoffMaxMs: number | null;
  webhookTokenCiphertext: Uint8Array<ArrayBuffer> | null;
  qrTransport: "websocket" | "rest";
  partnerAccount: string | null;
}

const COLUMNS = [
  ["apiUrl", "text"],
  ["idInstance", "text"],
  ["tokenCiphertext", "bytea"],
  ["label", "text"],
  ["expectedPhone", "text"],
  ["cron", "text"],
  ["enabled", "boolean"],
  ["maxAttempts", "int"],
  ["backoffBaseMs", "int"],
  ["backoffMaxMs", "int"],
  ["webhookTokenCiphertext", "bytea"],
  ["qrTransport", "text"],
  ["partnerAccount", "text"],
] as const satisfies ReadonlyArray<readonly [keyof SealedInstance, string]>;

/** The written columns, quoted, in the order of every list below. */
export const INSTANCE_COLUMNS = COLUMNS.map(([name]) => `"${name}"`).join(", ");

/** Column definitions of a table that holds rows before they become instances (qrTransport as text). */
export const INSTANCE_COLUMN_TYPES = COLUMNS.map(([name, type]) => `"${name}" ${type}`).join(", ");

/** `$n::text[], $n+1::text[], …`: one array parameter per column, from parameter `first` on. */
export function columnParams(first: number): string {
  return COLUMNS.map(([, type], i) => `$${first + i}::${type}[]`).join(", ");
}

/** The values to insert, read from `alias` (an unnest or a staging table), typed as "Instance" wants them. */
export function instanceValues(alias: string): string {
  return COLUMNS.map(([name]) => (name === "qrTransport" ? `${alias}."qrTransport"::"QrTransport"` : `${alias}."${name}"`)).join(", ");
}

/** The parameters of `columnParams`. */
export function columnArrays(rows: readonly SealedInstance[]): unknown[][] {
  return COLUMNS.map(([name]) => rows.map((row) => row[name]));
}

/** Seals many secrets at once: SecretBox.sealAll. */
export type SealAll = (plains: readonly string[]) => Array<Uint8Array<ArrayBuffer>>;

/** Checked input as the columns it is written to, its secrets sealed already. */
export function sealedInstance(
  v: NewInstance,
  tokenCiphertext: Uint8Array<ArrayBuffer>,
  webhookTokenCiphertext: Uint8Array<ArrayBuffer> | null,
  partnerAccount: string | null = null,
): SealedInstance {
  return {
    apiUrl: v.apiUrl,
    idInstance: v.idInstance,
    tokenCiphertext,
    label: v.label ?? null,
    expectedPhone: v.phone ?? null,
    cron: v.cron ?? null,
    enabled: v.enabled ?? true,
    maxAttempts: v.maxAttempts ?? null,
    backoffBaseMs: v.backoffBaseMs ?? null,
    backoffMaxMs: v.backoffMaxMs ?? null,
    webhookTokenCiphertext,
    qrTransport: v.qrTransport ?? "websocket",
    partnerAccount,
  };
}

/** Checked input made ready to write; every secret of the batch sealed in one go. */
export function sealInstances(rows: readonly NewInstance[], sealAll: SealAll, partnerAccount: string | null = null): SealedInstance[] {
  const tokens = sealAll(rows.map((r) => r.token));
  const hooks = sealAll(rows.flatMap((r) => (r.webhookToken ? [r.webhookToken] : [])));
  let hook = 0;
  return rows.map((v, i) => sealedInstance(v, tokens[i]!, v.webhookToken ? hooks[hook++]! : null, partnerAccount));
}
