import type { IncomingHttpHeaders } from "node:http";
import type { Redis } from "ioredis";
import { simpleParser } from "mailparser";
import pg from "pg";

/**
 * Looks for secrets in everything a system wrote: text (log lines, response bodies), raw emails,
 * HTTP requests it sent, the keys and values under a Redis prefix, and every text-like column of
 * a PostgreSQL database. Each secret is searched in every spelling it could leak in: as is,
 * base64 (standard and URL-safe, at any alignment inside a longer base64 text), hex and URL-encoded.
 *
 *   const found = await scanForSecrets({ "instance token": token }, [
 *     { kind: "text", name: "daemon log", text: lines.join("\n") },
 *     { kind: "redis", redis, prefix },
 *     { kind: "postgres", url: process.env.DATABASE_URL! },
 *   ]);
 *   expect(found).toEqual([]);
 *
 * A finding names the secret, the spelling and the place, and quotes the place with the secret
 * replaced by its name: a failing test never prints the secret itself.
 */

export type ScanSource =
  | { kind: "text"; name: string; text: string }
  | { kind: "email"; name: string; raw: Buffer | string }
  | { kind: "http-request"; name: string; method?: string; path?: string; headers: IncomingHttpHeaders | Record<string, string>; body: string }
  | { kind: "redis"; redis: Redis; prefix: string }
  | { kind: "postgres"; url: string };

export interface SecretFinding {
  /** The name the caller gave the secret. */
  secret: string;
  /** How it was spelled where it was found: plain, base64, base64url, hex, url-encoded. */
  form: string;
  /** Where: the source's name, and for Redis and PostgreSQL the key or table, column and row. */
  where: string;
  /** Up to 60 characters around the match, the secret replaced by `<its name>`. */
  excerpt: string;
}

interface Needle {
  secret: string;
  form: string;
  text: string;
  value: string;
}

/** Shorter needles would match by chance; every secret of this system is far longer. */
const MIN_NEEDLE = 12;

export async function scanForSecrets(secrets: Record<string, string>, sources: readonly ScanSource[]): Promise<SecretFinding[]> {
  const needles = Object.entries(secrets).flatMap(([name, value]) => spellings(name, value));
  const findings: SecretFinding[] = [];
  for (const source of sources) findings.push(...(await scanSource(needles, source)));
  return findings;
}

/** Every spelling of one secret worth looking for, deduplicated. */
export function spellings(name: string, value: string): Needle[] {
  const forms = new Map<string, string>();
  const add = (form: string, text: string) => {
    if (text.length >= MIN_NEEDLE && !forms.has(text)) forms.set(text, form);
  };
  add("plain", value);
  // A Standard Webhooks secret's key part alone is the secret too.
  if (value.startsWith("whsec_")) add("whsec key", value.slice(6));
  for (const aligned of base64Aligned(Buffer.from(value, "utf8"))) {
    add("base64", aligned);
    add("base64url", aligned.replace(/\+/g, "-").replace(/\//g, "_"));
  }
  add("hex", Buffer.from(value, "utf8").toString("hex"));
  add("url-encoded", encodeURIComponent(value));
  add("form-encoded", new URLSearchParams({ v: value }).toString().slice(2));
  return [...forms].map(([text, form]) => ({ secret: name, form, text, value }));
}

/**
 * The characters of base64(secret) that do not depend on what surrounds it, for each of the three
 * byte offsets the secret can start at inside a longer encoded text.
 */
function base64Aligned(bytes: Buffer): string[] {
  return [0, 1, 2].map((offset) => {
    const encoded = Buffer.concat([Buffer.alloc(offset), bytes]).toString("base64");
    const lead = offset === 0 ? 0 : offset === 1 ? 2 : 3;
    const stable = Math.floor((offset + bytes.length) / 3) * 4;
    return encoded.slice(lead, stable);
  });
}

async function scanSource(needles: Needle[], source: ScanSource): Promise<SecretFinding[]> {
  switch (source.kind) {
    case "text":
      return search(needles, source.text, source.name);
    case "email":
      return scanEmail(needles, source.name, source.raw);
    case "http-request": {
      const headers = Object.entries(source.headers).map(([k, v]) => `${k}: ${Array.isArray(v) ? v.join(", ") : v ?? ""}`);
      const head = [`${source.method ?? ""} ${source.path ?? ""}`, ...headers].join("\n");
      return [...search(needles, head, `${source.name} (request line and headers)`), ...search(needles, source.body, `${source.name} (body)`)];
    }
    case "redis":
      return scanRedis(needles, source.redis, source.prefix);
    case "postgres":
      return scanPostgres(needles, source.url);
  }
}

/** The raw message, and its decoded parts: a base64 or quoted-printable body hides a secret from the raw text. */
async function scanEmail(needles: Needle[], name: string, raw: Buffer | string): Promise<SecretFinding[]> {
  const parsed = await simpleParser(raw, { keepCidLinks: true });
  const headers = [...parsed.headers].map(([k, v]) => `${k}: ${typeof v === "string" ? v : JSON.stringify(v)}`).join("\n");
  const parts: Array<[string, string]> = [
    ["raw", typeof raw === "string" ? raw : raw.toString("utf8")],
    ["headers", headers],
    ["text", parsed.text ?? ""],
    ["html", typeof parsed.html === "string" ? parsed.html : ""],
    ...parsed.attachments.map((a, i): [string, string] => [`attachment ${i + 1} ${a.filename ?? a.contentType}`, a.content.toString("latin1")]),
  ];
  return parts.flatMap(([part, text]) => search(needles, text, `${name} (${part})`));
}

function search(needles: Needle[], text: string, where: string): SecretFinding[] {
  const found: SecretFinding[] = [];
  for (const n of needles) {
    const at = text.indexOf(n.text);
    if (at >= 0) found.push({ secret: n.secret, form: n.form, where, excerpt: excerpt(text, at, n) });
  }
  return found;
}

function excerpt(text: string, at: number, n: Needle): string {
  const around = text.slice(Math.max(0, at - 30), at + n.text.length + 30);
  return around.split(n.text).join(`<${n.secret}>`).split(n.value).join(`<${n.secret}>`).replace(/\s+/g, " ");
}

/** Every key under `${prefix}:`, its name and every value of every type. */
async function scanRedis(needles: Needle[], redis: Redis, prefix: string): Promise<SecretFinding[]> {
  const found: SecretFinding[] = [];
  for (let cursor = "0"; ; ) {
    const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}:*`, "COUNT", 500);
    for (const key of keys) found.push(...search(needles, `${key}\n${await redisValue(redis, key)}`, `Redis key ${key}`));
    if (next === "0") return found;
    cursor = next;
  }
}

async function redisValue(redis: Redis, key: string): Promise<string> {
  const type = await redis.type(key);
  switch (type) {
    case "string":
      return (await redis.getBuffer(key))?.toString("latin1") ?? "";
    case "hash":
      return Object.entries(await redis.hgetall(key)).flat().join("\n");
    case "list":
      return (await redis.lrange(key, 0, -1)).join("\n");
    case "set":
      return (await redis.smembers(key)).join("\n");
    case "zset":
      return (await redis.zrange(key, 0, -1, "WITHSCORES")).join("\n");
    case "stream":
      return (await redis.xrange(key, "-", "+")).map(([id, fields]) => [id, ...fields].join("\n")).join("\n");
    case "none":
      return ""; // expired between SCAN and TYPE
    default:
      return `(a ${type} key this scanner cannot read)`;
  }
}

/** PostgreSQL types whose text form is worth searching; found per column, so a new column is covered without a change here. */
const TEXT_LIKE = ["text", "character varying", "character", "json", "jsonb", "ARRAY"];

/** Every text-like column of every table of the public schema; the search itself runs in PostgreSQL. */
async function scanPostgres(needles: Needle[], url: string): Promise<SecretFinding[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows: columns } = await client.query<{ table_name: string; column_name: string; data_type: string; has_id: boolean }>(
      `SELECT c.table_name, c.column_name, c.data_type,
              EXISTS (SELECT 1 FROM information_schema.columns i
                       WHERE i.table_schema = c.table_schema AND i.table_name = c.table_name AND i.column_name = 'id') AS has_id
         FROM information_schema.columns c JOIN information_schema.tables t USING (table_schema, table_name)
        WHERE c.table_schema = 'public' AND t.table_type = 'BASE TABLE' AND c.data_type = ANY($1)`,
      [TEXT_LIKE],
    );
    const patterns = needles.map((n) => `%${n.text.replace(/[\\%_]/g, (c) => `\\${c}`)}%`);
    const found: SecretFinding[] = [];
    for (const col of columns) {
      const ident = (s: string) => `"${s.replace(/"/g, '""')}"`;
      const rowName = col.has_id ? "id::text" : "ctid::text";
      const { rows } = await client.query<{ row: string; value: string }>(
        `SELECT ${rowName} AS row, ${ident(col.column_name)}::text AS value FROM ${ident(col.table_name)}
          WHERE ${ident(col.column_name)}::text LIKE ANY($1::text[])`,
        [patterns],
      );
      for (const r of rows) found.push(...search(needles, r.value, `PostgreSQL ${col.table_name}.${col.column_name} row ${r.row}`));
    }
    return found;
  } finally {
    await client.end();
  }
}

/** How many keys a scan of `prefix` reads, so a test can show its search was not of nothing. */
export async function countRedisKeys(redis: Redis, prefix: string): Promise<number> {
  let count = 0;
  for (let cursor = "0"; ; ) {
    const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}:*`, "COUNT", 500);
    count += keys.length;
    if (next === "0") return count;
    cursor = next;
  }
}
