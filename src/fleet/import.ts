import { parse as parseCsv } from "csv-parse/sync";
import type { FleetContext } from "./context.js";
import { announceInstanceChanges } from "./instance-changes.js";
import { ValidationError, describeIssues } from "./errors.js";
import { newInstanceSchema, type NewInstance } from "./instance-input.js";
import { instanceData, syncCronSchedule } from "./instances.js";

export interface RowError {
  /** 1-based data row (the CSV header is not counted). */
  row: number;
  message: string;
}

export interface ImportResult {
  created: number;
  ids: string[];
}

const MAX_ROWS = 50_000;
const NUMERIC = new Set(["maxAttempts", "backoffBaseMs", "backoffMaxMs"]);

/** CSV (with a header row) or JSON (an array of objects); the format is told by the content. */
export function parseImportText(text: string): Array<Record<string, unknown>> {
  const trimmed = text.trim();
  if (trimmed === "") throw new ValidationError("the import file is empty");
  if (trimmed.startsWith("[") || trimmed.startsWith("{")) return parseJsonRows(trimmed);
  return parseCsvRows(trimmed);
}

function parseJsonRows(text: string): Array<Record<string, unknown>> {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new ValidationError(`the import file is not valid JSON: ${(err as Error).message}`);
  }
  if (!Array.isArray(data)) throw new ValidationError("a JSON import must be an array of instance objects");
  return data.map((row) => (row && typeof row === "object" && !Array.isArray(row) ? (row as Record<string, unknown>) : { __invalid: row }));
}

function parseCsvRows(text: string): Array<Record<string, unknown>> {
  let records: Array<Record<string, string>>;
  try {
    records = parseCsv(text, { columns: true, skip_empty_lines: true, trim: true, bom: true });
  } catch (err) {
    throw new ValidationError(`the import file is not valid CSV: ${(err as Error).message}`);
  }
  return records.map((r) => {
    const row: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(r)) {
      if (value === "") continue;
      if (NUMERIC.has(key)) row[key] = Number(value);
      else if (key === "enabled") row[key] = !/^(false|0|no)$/i.test(value);
      else row[key] = value;
    }
    return row;
  });
}

/** Validates every row first; creates all of them in one transaction, or none. */
export async function importInstances(ctx: FleetContext, text: string): Promise<ImportResult> {
  const rows = parseImportText(text);
  if (rows.length > MAX_ROWS) throw new ValidationError(`at most ${MAX_ROWS} rows per import (got ${rows.length})`);
  const errors: RowError[] = [];
  const valid: NewInstance[] = [];
  const seen = new Map<string, number>();
  rows.forEach((row, i) => {
    const parsed = newInstanceSchema.safeParse(row);
    if (!parsed.success) return void errors.push({ row: i + 1, message: describeIssues(parsed.error.issues) });
    const key = `${parsed.data.apiUrl} ${parsed.data.idInstance}`;
    const first = seen.get(key);
    if (first !== undefined) return void errors.push({ row: i + 1, message: `duplicate of row ${first}` });
    seen.set(key, i + 1);
    valid.push(parsed.data);
  });
  errors.push(...(await existingRows(ctx, valid, seen)));
  if (errors.length > 0) {
    errors.sort((a, b) => a.row - b.row);
    throw new ValidationError(`${errors.length} of ${rows.length} rows are invalid; nothing was imported`, { rows: errors });
  }
  const created = await ctx.db.$transaction(
    (tx) => tx.instance.createManyAndReturn({ data: valid.map((v) => instanceData(ctx, v)), select: { id: true, cron: true, enabled: true } }),
    { timeout: 60_000 },
  );
  await announceInstanceChanges(ctx, valid.map((v) => v.idInstance));
  for (const inst of created) if (inst.cron) await syncCronSchedule(ctx, inst);
  return { created: created.length, ids: created.map((c) => c.id) };
}

async function existingRows(ctx: FleetContext, valid: NewInstance[], seen: Map<string, number>): Promise<RowError[]> {
  if (valid.length === 0) return [];
  const existing = await ctx.db.instance.findMany({
    where: { idInstance: { in: valid.map((v) => v.idInstance) } },
    select: { apiUrl: true, idInstance: true },
  });
  return existing
    .map((e) => seen.get(`${e.apiUrl} ${e.idInstance}`))
    .filter((row): row is number => row !== undefined)
    .map((row) => ({ row, message: "an instance with this apiUrl and idInstance already exists" }));
}
