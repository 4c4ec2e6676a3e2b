/**
 * What the provider sends, made safe to keep. Its text ends up in PostgreSQL (an attempt's error,
 * the account data as jsonb), in logs and in operators' messages, and PostgreSQL refuses a NUL
 * character in text and a lone UTF-16 surrogate in jsonb: one such frame would make the attempt's
 * outcome impossible to record. A hostile `message` may also nest deeper than JSON.stringify or
 * String() can recurse. Everything here is bounded and never throws.
 */

const NUL = /\u0000/g;
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/** Deepest nesting of account data kept as JSON; GREEN-API's is flat. */
export const MAX_JSON_DEPTH = 32;
/** Most values (objects, arrays, scalars) of account data kept as JSON. */
export const MAX_JSON_NODES = 2_000;
/** Longest string kept inside account data. */
const MAX_JSON_STRING = 2_000;

/** `text` with NUL characters and lone surrogates replaced by U+FFFD, cut to `max` characters. */
export function storableText(text: string, max: number): string {
  const cut = text.length > max ? text.slice(0, max) : text;
  return cut.replace(NUL, "\ufffd").replace(LONE_SURROGATE, "\ufffd");
}

/** Any `message` as text for an error: strings as they are, other values as JSON, all bounded. */
export function messageText(message: unknown, max: number): string {
  if (typeof message === "string") return storableText(message, max);
  if (message === undefined) return "";
  const copy = storableJson(message);
  if (copy.ok) return storableText(JSON.stringify(copy.value) ?? "", max);
  return `(a ${Array.isArray(message) ? "array" : typeof message} too large or deep to show)`;
}

export type StorableJson = { ok: true; value: unknown } | { ok: false };

/**
 * A copy of a parsed JSON value that PostgreSQL's jsonb accepts and JSON.stringify cannot choke
 * on: strings and keys cleaned (see storableText), at most MAX_JSON_DEPTH deep and MAX_JSON_NODES
 * values; anything larger is refused rather than cut, so what is kept is never a silent fragment.
 */
export function storableJson(value: unknown): StorableJson {
  const budget = { nodes: MAX_JSON_NODES };
  const copy = copyJson(value, MAX_JSON_DEPTH, budget);
  return copy === REFUSED ? { ok: false } : { ok: true, value: copy };
}

const REFUSED = Symbol("refused");

function copyJson(value: unknown, depth: number, budget: { nodes: number }): unknown {
  if (--budget.nodes < 0 || depth < 0) return REFUSED;
  if (typeof value === "string") return storableText(value, MAX_JSON_STRING);
  if (value === null || typeof value === "number" || typeof value === "boolean") return value;
  if (Array.isArray(value)) {
    const out: unknown[] = [];
    for (const item of value) {
      const copy = copyJson(item, depth - 1, budget);
      if (copy === REFUSED) return REFUSED;
      out.push(copy);
    }
    return out;
  }
  if (typeof value === "object") {
    // A null prototype: a `__proto__` key from the wire stays a plain key, never a prototype.
    const out: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
    for (const [key, item] of Object.entries(value)) {
      const copy = copyJson(item, depth - 1, budget);
      if (copy === REFUSED) return REFUSED;
      out[storableText(key, MAX_JSON_STRING)] = copy;
    }
    return out;
  }
  return REFUSED; // undefined, functions, symbols, bigints: not JSON
}
