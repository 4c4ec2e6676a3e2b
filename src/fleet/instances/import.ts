import type { PoolClient } from "pg";
import type { FleetContext } from "../context.js";
import { ConflictError, ValidationError, describeIssues } from "../errors.js";
import { announceInstanceChanges } from "./instance-changes.js";
import { newInstanceSchema, type NewInstance } from "./instance-input.js";
import { columnParams, columnArrays, INSTANCE_COLUMN_TYPES, INSTANCE_COLUMNS, instanceValues, sealInstances } from "./instance-rows.js";
import { syncCronSchedule } from "./instances.js";
import { readImportRows, type ImportSource } from "./import-rows.js";
import { isUniqueViolation } from "../../db.js";

/**
 * `qrfleet instance import` and POST /api/instances/import: every row of a file, or none. The file
 * is read as a stream and each row checked as it comes; good rows wait in a temporary table of the
 * import's own transaction, a few thousand per statement, and only when every row is good do they
 * become instances, in one statement. Memory stays flat whatever the size of the file.
 */

export type { ImportSource } from "./import-rows.js";

export interface RowError {
  /** 1-based data row (the CSV header is not counted). */
  row: number;
  message: string;
}

export interface ImportResult {
  created: number;
  /** The new instances' ids, in the order of the file's rows. */
  ids: string[];
}

export interface ImportProgress {
  step: "checked" | "writing";
  /** Rows read and checked so far. */
  rows: number;
}

export interface ImportOptions {
  onProgress?: (progress: ImportProgress) => void;
  /** Aborting stops the import between two batches; nothing is written. */
  signal?: AbortSignal;
}

/** Far beyond any fleet, and its new rows are still one transaction: a file past it is split. */
export const MAX_IMPORT_ROWS = 1_000_000;
/** Row errors listed in the error; the message says how many there are in all. */
export const LISTED_ROW_ERRORS = 100;
/** Rows sealed and staged per statement. */
const BATCH = 2_000;

interface Staged {
  row: number;
  input: NewInstance;
}

interface Tally {
  rows: number;
  invalid: number;
  /** The first LISTED_ROW_ERRORS row errors, in row order. */
  listed: RowError[];
}

export async function importInstances(ctx: FleetContext, source: ImportSource, opts: ImportOptions = {}): Promise<ImportResult> {
  const client = await ctx.sql.connect();
  let broken: Error | undefined;
  try {
    await client.query("BEGIN");
    await client.query(`CREATE TEMP TABLE import_rows (row int NOT NULL, id uuid NOT NULL DEFAULT gen_random_uuid(), ${INSTANCE_COLUMN_TYPES}) ON COMMIT DROP`);
    const tally = await stageRows(ctx, client, source, opts);
    await refuseProblems(client, tally);
    opts.onProgress?.({ step: "writing", rows: tally.rows });
    const result = await createInstances(client);
    await client.query("COMMIT");
    await announceInstanceChanges(ctx, result.idInstances);
    for (const inst of result.scheduled) await syncCronSchedule(ctx, inst);
    return { created: result.ids.length, ids: result.ids };
  } catch (err) {
    await client.query("ROLLBACK").catch((e: Error) => void (broken = e));
    throw err;
  } finally {
    client.release(broken);
  }
}

/**
 * Reads and checks every row; stages the good ones, one batch in PostgreSQL while the next is read.
 * A bad row stops the sealing, not the reading: every error is counted.
 */
async function stageRows(ctx: FleetContext, client: PoolClient, source: ImportSource, opts: ImportOptions): Promise<Tally> {
  const tally: Tally = { rows: 0, invalid: 0, listed: [] };
  let batch: Staged[] = [];
  let staging: Promise<void> = Promise.resolve();
  const flush = async () => {
    await staging;
    opts.signal?.throwIfAborted();
    if (batch.length > 0) opts.onProgress?.({ step: "checked", rows: tally.rows });
    staging = stage(ctx, client, batch, tally.invalid === 0);
    // Awaited at the next flush; until then its failure must not count as unhandled.
    staging.catch(() => undefined);
    batch = [];
  };
  for await (const raw of readImportRows(source)) {
    const row = ++tally.rows;
    if (row > MAX_IMPORT_ROWS) throw new ValidationError(`at most ${MAX_IMPORT_ROWS} rows per import: split the file`);
    const parsed = newInstanceSchema.safeParse(raw);
    if (parsed.success) batch.push({ row, input: parsed.data });
    else noteError(tally, { row, message: describeIssues(parsed.error.issues) });
    if (batch.length >= BATCH) await flush();
  }
  await flush();
  await staging;
  return tally;
}

function noteError(tally: Tally, error: RowError): void {
  tally.invalid += 1;
  if (tally.listed.length < LISTED_ROW_ERRORS) tally.listed.push(error);
}

/** Once a row is bad nothing will be written, so later rows are staged for the duplicate checks only, unsealed. */
async function stage(ctx: FleetContext, client: PoolClient, batch: Staged[], seal: boolean): Promise<void> {
  if (batch.length === 0) return;
  const rows = sealInstances(batch.map((b) => b.input), seal ? (plains) => ctx.box.sealAll(plains) : unsealed);
  await client.query(`INSERT INTO import_rows (row, ${INSTANCE_COLUMNS}) SELECT * FROM unnest($1::int[], ${columnParams(2)})`, [
    batch.map((b) => b.row),
    ...columnArrays(rows),
  ]);
}

const unsealed = (plains: readonly string[]) => plains.map(() => new Uint8Array(0));

/**
 * Rows that name the same instance as an earlier row, or as one the fleet has; then, if any row
 * is bad, the refusal with the first errors by row.
 */
async function refuseProblems(client: PoolClient, tally: Tally): Promise<void> {
  const { rows } = await client.query<{ row: number; message: string; total: number }>(
    `WITH ranked AS (
       SELECT row, "apiUrl", "idInstance", min(row) OVER (PARTITION BY "apiUrl", "idInstance") AS first FROM import_rows
     ), problems AS (
       SELECT row, 'duplicate of row ' || first AS message FROM ranked WHERE row <> first
       UNION ALL
       SELECT r.row, 'an instance with this apiUrl and idInstance already exists'
         FROM ranked r JOIN "Instance" i ON i."apiUrl" = r."apiUrl" AND i."idInstance" = r."idInstance" WHERE r.row = r.first
     )
     SELECT row, message, (count(*) OVER ())::int AS total FROM problems ORDER BY row LIMIT $1`,
    [LISTED_ROW_ERRORS],
  );
  const invalid = tally.invalid + (rows[0]?.total ?? 0);
  if (invalid === 0) return;
  const listed = [...tally.listed, ...rows.map(({ row, message }) => ({ row, message }))].sort((a, b) => a.row - b.row).slice(0, LISTED_ROW_ERRORS);
  const more = invalid > listed.length ? ` (the first ${listed.length} are listed)` : "";
  throw new ValidationError(`${invalid} of ${tally.rows} rows are invalid; nothing was imported${more}`, { rows: listed });
}

async function createInstances(client: PoolClient): Promise<{ ids: string[]; idInstances: string[]; scheduled: Array<{ id: string; cron: string; enabled: boolean }> }> {
  try {
    await client.query(
      `INSERT INTO "Instance" (id, ${INSTANCE_COLUMNS}, "updatedAt") SELECT s.id, ${instanceValues("s")}, now() FROM import_rows s`,
    );
  } catch (err) {
    if (isUniqueViolation(err)) throw new ConflictError("an instance of the file was added to the fleet while the import ran; nothing was imported: run it again");
    throw err;
  }
  const ids = await client.query<[string, string]>({ text: `SELECT id, "idInstance" FROM import_rows ORDER BY row`, rowMode: "array" });
  const scheduled = await client.query<{ id: string; cron: string; enabled: boolean }>(`SELECT id, cron, enabled FROM import_rows WHERE cron IS NOT NULL`);
  return { ids: ids.rows.map(([id]) => id), idInstances: ids.rows.map(([, idInstance]) => idInstance), scheduled: scheduled.rows };
}
