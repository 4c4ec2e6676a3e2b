import type { FleetContext } from "../context.js";

/**
 * Re-encrypts every sealed value under the current key, while daemons keep running: they open
 * values under any key of the ring, so it does not matter to them which rows are done yet.
 * Rows are read in batches by id (keyset pagination, so a long run never holds a transaction or
 * an offset), and each is written back only if it still holds the ciphertext that was read: a
 * token set meanwhile (already sealed under the current key) is never overwritten with an older
 * one. Running it again skips what is done, so an interrupted run is resumed by starting it again.
 */

/** Every column holding a sealed value. A new one must be added here, or rotation leaves it behind. */
export const SEALED_COLUMNS = [
  { kind: "instance_token", what: "instance tokens", owner: "instance", table: "Instance", column: "tokenCiphertext" },
  { kind: "instance_webhook_token", what: "instance webhook tokens", owner: "instance", table: "Instance", column: "webhookTokenCiphertext" },
  { kind: "channel_secret", what: "channel webhook secrets", owner: "channel", table: "Channel", column: "secretCiphertext" },
] as const;

type SealedColumn = (typeof SEALED_COLUMNS)[number];
export type SealedKind = SealedColumn["kind"];

export interface KindReport {
  kind: SealedKind;
  /** Sealed values of this kind read. */
  read: number;
  /** Written back under the current key by this run. */
  reEncrypted: number;
  /** Already under the current key (in the current format). */
  alreadyCurrent: number;
  /** Still under a previous key (or in the format without a key id): what --check counts. */
  underOldKey: number;
  /** Ids of the rows (instances or channels) whose value opens under none of the configured keys. */
  unreadable: string[];
}

export interface RotationReport {
  /** Id of the current key (not the key): what every value is sealed under once done. */
  keyId: string;
  checkOnly: boolean;
  /** False when the run was stopped before the last batch. */
  complete: boolean;
  kinds: KindReport[];
}

export interface RotationOptions {
  /** Only count: nothing is written. */
  checkOnly?: boolean;
  /** Rows read per statement. Default: 500 */
  batchSize?: number;
  /** Stops between two batches; what is done stays done. */
  signal?: AbortSignal;
  /** Called after every batch with the counts so far of the kind being rotated. */
  onProgress?: (progress: Readonly<KindReport>) => void;
}

interface Row {
  id: string;
  sealed: Buffer;
}

/** A row whose ciphertext changed between read and write is read again, a few times at most. */
const MAX_ROUNDS = 3;
const DEFAULT_BATCH = 500;

export async function rotateKey(ctx: FleetContext, opts: RotationOptions = {}): Promise<RotationReport> {
  const report: RotationReport = { keyId: ctx.box.currentKeyId, checkOnly: opts.checkOnly ?? false, complete: true, kinds: [] };
  for (const column of SEALED_COLUMNS) {
    const kind: KindReport = { kind: column.kind, read: 0, reEncrypted: 0, alreadyCurrent: 0, underOldKey: 0, unreadable: [] };
    report.kinds.push(kind);
    if (!(await rotateColumn(ctx, column, kind, opts))) {
      report.complete = false;
      break;
    }
  }
  return report;
}

/** True when the column was gone through to its end; false when stopped by the signal. */
async function rotateColumn(ctx: FleetContext, column: SealedColumn, kind: KindReport, opts: RotationOptions): Promise<boolean> {
  const batchSize = opts.batchSize ?? DEFAULT_BATCH;
  const select = `SELECT id, "${column.column}" AS sealed FROM "${column.table}"
    WHERE "${column.column}" IS NOT NULL AND ($1::uuid IS NULL OR id > $1::uuid) ORDER BY id LIMIT $2`;
  let after: string | null = null;
  for (;;) {
    if (opts.signal?.aborted) return false;
    const rows: Row[] = (await ctx.sql.query<Row>(select, [after, batchSize])).rows;
    if (rows.length === 0) return true;
    kind.read += rows.length;
    await rotateRows(ctx, column, kind, rows, opts.checkOnly ?? false, 1);
    opts.onProgress?.(kind);
    if (rows.length < batchSize) return true;
    after = rows[rows.length - 1]!.id;
  }
}

async function rotateRows(ctx: FleetContext, column: SealedColumn, kind: KindReport, rows: Row[], checkOnly: boolean, round: number): Promise<void> {
  const stale: Array<Row & { resealed: Buffer }> = [];
  for (const row of rows) {
    let opened;
    try {
      opened = ctx.box.unseal(row.sealed);
    } catch {
      kind.unreadable.push(row.id);
      continue;
    }
    if (opened.current) kind.alreadyCurrent += 1;
    else if (checkOnly) kind.underOldKey += 1;
    else stale.push({ ...row, resealed: Buffer.from(ctx.box.seal(opened.value)) });
  }
  if (stale.length === 0) return;
  const written = await compareAndSet(ctx, column, stale);
  kind.reEncrypted += written.size;
  const lost = stale.filter((r) => !written.has(r.id));
  if (lost.length === 0) return;
  if (round >= MAX_ROUNDS) {
    kind.underOldKey += lost.length;
    return;
  }
  await rotateRows(ctx, column, kind, await reread(ctx, column, lost.map((r) => r.id)), checkOnly, round + 1);
}

/** Writes each new ciphertext only where the row still holds the one it was made from; returns the ids written. */
async function compareAndSet(ctx: FleetContext, column: SealedColumn, rows: Array<Row & { resealed: Buffer }>): Promise<Set<string>> {
  const { rows: written } = await ctx.sql.query<{ id: string }>(
    `UPDATE "${column.table}" AS t SET "${column.column}" = v.resealed
       FROM unnest($1::uuid[], $2::bytea[], $3::bytea[]) AS v(id, sealed, resealed)
      WHERE t.id = v.id AND t."${column.column}" = v.sealed
      RETURNING t.id`,
    [rows.map((r) => r.id), rows.map((r) => r.sealed), rows.map((r) => r.resealed)],
  );
  return new Set(written.map((r) => r.id));
}

/** What rows hold now; a row deleted or cleared meanwhile has nothing left to rotate. */
async function reread(ctx: FleetContext, column: SealedColumn, ids: string[]): Promise<Row[]> {
  const { rows } = await ctx.sql.query<Row>(
    `SELECT id, "${column.column}" AS sealed FROM "${column.table}" WHERE id = ANY($1::uuid[]) AND "${column.column}" IS NOT NULL`,
    [ids],
  );
  return rows;
}

/** Which column a kind is, for a face that names it. */
export function sealedColumn(kind: SealedKind): SealedColumn {
  return SEALED_COLUMNS.find((c) => c.kind === kind)!;
}
