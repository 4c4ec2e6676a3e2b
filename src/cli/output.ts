import { CommanderError, InvalidArgumentError } from "commander";
import { ConfigError } from "../config.js";
import { ValidationError } from "../fleet/errors.js";
import { InvalidAddressError } from "../greenapi/urls.js";
import { maskSecrets } from "../log.js";

/** How the CLI prints: tables and `key: value` blocks for people, one JSON document for machines. */

export const EXIT = { ok: 0, failed: 1, usage: 2 } as const;

/** Bad input found by a command itself (not by commander): exits 2 like a usage error. */
export class UsageError extends Error {
  override name = "UsageError";
}

export interface Out {
  json: boolean;
}

export function print(text: string): void {
  process.stdout.write(text.endsWith("\n") ? text : `${text}\n`);
}

/** Control characters other than line breaks, shown as escapes: what was stored must not drive the terminal. */
export function visible(text: string): string {
  return text.replace(/[^\P{Cc}\n]/gu, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`);
}

/** Dates become ISO strings through JSON.stringify, as the HTTP API returns them. */
export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}

/** Prints `value` as JSON, or as the text `human(value)` returns. */
export function emit<T>(out: Out, value: T, human: (v: T) => string): void {
  if (out.json) printJson(value);
  else print(visible(human(value)));
}

export function when(d: Date | null | undefined): string {
  return d ? d.toISOString().replace("T", " ").replace(/\.\d{3}Z$/, "Z") : "-";
}

export function dash(v: string | number | null | undefined): string {
  return v === null || v === undefined || v === "" ? "-" : String(v);
}

/** Columns padded to their widest cell; `empty` is printed instead of a header with no rows. */
export function table(header: string[], rows: string[][], empty: string): string {
  if (rows.length === 0) return empty;
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => (r[c] ?? "").length)));
  const line = (cells: string[]) => cells.map((cell, c) => cell.padEnd(widths[c]!)).join("  ").trimEnd();
  return [line(header), ...rows.map(line)].join("\n");
}

/** `key: value` lines with the keys aligned. */
export function fields(pairs: Array<[string, string]>): string {
  const width = Math.max(...pairs.map(([k]) => k.length));
  return pairs.map(([k, v]) => `${`${k}:`.padEnd(width + 1)} ${v}`).join("\n");
}

/**
 * Progress on stderr, so stdout holds only the result: on a terminal one line rewritten in place,
 * otherwise (a log, a pipe) a plain line per step.
 */
export function progressLine(stream: NodeJS.WriteStream = process.stderr): { draw: (text: string) => void; end: () => void } {
  let drawn = false;
  return {
    draw(text) {
      if (!stream.isTTY) return void stream.write(`${text}\n`);
      stream.write(`\r\x1b[2K${text}`);
      drawn = true;
    },
    end() {
      if (drawn) stream.write("\n");
      drawn = false;
    },
  };
}

/** A commander argument parser for whole numbers in a range; a bad value is a usage error. */
export function intArg(min: number, max = Number.MAX_SAFE_INTEGER) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^-?\d+$/.test(value.trim()) || n < min || n > max) {
      throw new InvalidArgumentError(`must be a whole number from ${min} to ${max}`);
    }
    return n;
  };
}

export function exitCodeOf(err: unknown): number {
  if (err instanceof CommanderError) return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
  if (err instanceof ConfigError || err instanceof UsageError || err instanceof InvalidAddressError) return EXIT.usage;
  return EXIT.failed;
}

/**
 * One clear line on stderr per error, never a stack: the message is masked, because a driver
 * error can quote a connection string. An import's row errors follow on lines of their own.
 */
export function reportError(err: unknown, json: boolean): void {
  if (err instanceof CommanderError) return; // commander has already printed its message
  const message = maskSecrets(describeError(err));
  const rows = rowErrors(err).map((r) => ({ row: r.row, message: maskSecrets(r.message) }));
  if (json) {
    const code = (err as { code?: unknown }).code;
    const error = { code: typeof code === "string" ? code : "error", message, ...(rows.length > 0 && { rows }) };
    process.stderr.write(`${JSON.stringify({ error })}\n`);
    return;
  }
  const lines = [`qrfleet: ${message}`, ...rows.map((r) => `  row ${r.row}: ${r.message}`)];
  process.stderr.write(`${lines.join("\n")}\n`);
}

/**
 * Prisma's messages quote the calling source over several lines and end with the cause:
 * the cause is what the user can act on.
 */
function describeError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const lines = err.message.split("\n").map((l) => l.trim()).filter(Boolean);
  if (err.name.startsWith("PrismaClient")) return `database: ${lines.at(-1) ?? err.name}`;
  return lines[0] ?? err.name;
}

function rowErrors(err: unknown): Array<{ row: number; message: string }> {
  if (!(err instanceof ValidationError)) return [];
  const rows = err.details?.rows;
  return Array.isArray(rows) ? (rows as Array<{ row: number; message: string }>) : [];
}

/** A secret given as `-` is read from standard input (its first line), so it never shows in `ps` or shell history. */
export async function secretArg<T extends string | undefined>(value: T): Promise<T | string> {
  if (value !== "-") return value;
  let text = "";
  for await (const chunk of process.stdin) text += String(chunk);
  return text.split(/\r?\n/)[0]!.trim();
}
