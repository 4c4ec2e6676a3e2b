import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { JSONParser } from "@streamparser/json";
import { CsvError, parse as parseCsv } from "csv-parse";
import { ValidationError } from "../errors.js";

/**
 * The rows of an import file, read as they arrive: CSV (with a header row) or JSON (an array of
 * objects), the format told by the first character. Only the rows between the reader and the
 * validator are in memory, never the file, so a fleet of any size is read in the same few MB.
 */

export type ImportRow = Record<string, unknown>;
/** The file as it is read: from disk, a request body, or a whole string. */
export type ImportSource = string | Iterable<Buffer> | AsyncIterable<Buffer | string>;

const NUMERIC = new Set(["maxAttempts", "backoffBaseMs", "backoffMaxMs"]);
const BOM = Buffer.from([0xef, 0xbb, 0xbf]);
const BLANK = new Set([0x20, 0x09, 0x0a, 0x0d]);

export async function* readImportRows(source: ImportSource): AsyncGenerator<ImportRow> {
  const chunks = toBuffers(typeof source === "string" ? [source] : source)[Symbol.asyncIterator]();
  const head: Buffer[] = [];
  let first: number | undefined;
  while (first === undefined) {
    const next = await chunks.next();
    if (next.done) throw new ValidationError("the import file is empty");
    head.push(next.value);
    first = firstByte(Buffer.concat(head));
  }
  const all = replay(head, chunks);
  if (first === 0x5b /* [ */) yield* jsonRows(all);
  else if (first === 0x7b /* { */) throw new ValidationError("a JSON import must be a JSON array of instance objects, [ {…}, {…} ]");
  else yield* csvRows(all);
}

async function* toBuffers(source: AsyncIterable<Buffer | string> | Iterable<Buffer | string>): AsyncGenerator<Buffer> {
  for await (const chunk of source) if (chunk.length > 0) yield typeof chunk === "string" ? Buffer.from(chunk, "utf8") : chunk;
}

/** The first byte that is not a byte order mark or blank, or undefined when there is none yet. */
function firstByte(bytes: Buffer): number | undefined {
  const start = bytes.subarray(0, 3).equals(BOM) ? 3 : 0;
  for (let i = start; i < bytes.length; i++) if (!BLANK.has(bytes[i]!)) return bytes[i];
  return undefined;
}

async function* replay(head: Buffer[], rest: AsyncIterator<Buffer>): AsyncGenerator<Buffer> {
  yield* head;
  for (let next = await rest.next(); !next.done; next = await rest.next()) yield next.value;
}

async function* csvRows(chunks: AsyncIterable<Buffer>): AsyncGenerator<ImportRow> {
  const parser = parseCsv({ columns: true, skip_empty_lines: true, trim: true, bom: true });
  // A failure of the source or the parser reaches the loop below, which destroys both when it stops early.
  const fed = pipeline(Readable.from(chunks), parser).catch(() => undefined);
  try {
    for await (const record of parser as AsyncIterable<Record<string, string>>) yield csvRow(record);
  } catch (err) {
    if (err instanceof CsvError) throw new ValidationError(`the import file is not valid CSV: ${err.message}`);
    throw err;
  } finally {
    parser.destroy();
    await fed;
  }
}

function csvRow(record: Record<string, string>): ImportRow {
  const row: ImportRow = {};
  for (const [key, value] of Object.entries(record)) {
    if (value === "") continue;
    if (NUMERIC.has(key)) row[key] = Number(value);
    else if (key === "enabled") row[key] = !/^(false|0|no)$/i.test(value);
    else row[key] = value;
  }
  return row;
}

async function* jsonRows(chunks: AsyncIterable<Buffer>): AsyncGenerator<ImportRow> {
  // Only the array's elements are kept, one at a time: the parser holds no stack of what came before.
  const parser = new JSONParser({ paths: ["$.*"], keepStack: false, stringBufferSize: 64 * 1024 });
  const ready: unknown[] = [];
  parser.onValue = ({ value }) => void ready.push(value);
  const feed = (write: () => void) => {
    try {
      write();
    } catch (err) {
      throw new ValidationError(`the import file is not valid JSON: ${(err as Error).message}`);
    }
  };
  let started = false;
  for await (const chunk of chunks) {
    feed(() => parser.write(started ? chunk : withoutBom(chunk)));
    started = true;
    yield* ready.splice(0).map(jsonRow);
  }
  // The parser ends by itself at the array's closing bracket; a file cut short ends it here, with an error.
  if (!parser.isEnded) feed(() => parser.end());
  yield* ready.splice(0).map(jsonRow);
}

const withoutBom = (chunk: Buffer) => (chunk.subarray(0, 3).equals(BOM) ? chunk.subarray(3) : chunk);

/** An element that is not an object is still a row, so its error names its place. */
function jsonRow(value: unknown): ImportRow {
  return value && typeof value === "object" && !Array.isArray(value) ? (value as ImportRow) : { __invalid: value };
}
