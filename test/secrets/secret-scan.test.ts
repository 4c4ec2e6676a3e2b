import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { newPrefix } from "../support/fleet.js";
import { scanForSecrets, type ScanSource } from "../support/secret-scan.js";

/** The scanner finds what it is for: a search that cannot find anything would let every leak through. */

const SECRET = `planted-${randomBytes(12).toString("hex")}`;
const prefix = newPrefix();
let redis: Redis;
let db: pg.Client;

beforeAll(async () => {
  redis = new Redis(process.env.REDIS_URL ?? "redis://127.0.0.1:6379");
  db = new pg.Client({ connectionString: process.env.DATABASE_URL });
  await db.connect();
});
afterAll(async () => {
  const keys = await redis.keys(`${prefix}:*`);
  if (keys.length > 0) await redis.del(...keys);
  redis.disconnect();
  await db.end();
});

const places = async (sources: ScanSource[]) => (await scanForSecrets({ planted: SECRET }, sources)).map((f) => `${f.form} @ ${f.where}`);

describe("the secret scanner", () => {
  it("finds a secret as is, in base64 at any offset inside a longer text, URL-encoded and hex, and never quotes it", async () => {
    const sources: ScanSource[] = [0, 1, 2].map((offset) => ({
      kind: "text",
      name: `blob ${offset}`,
      text: Buffer.concat([randomBytes(offset + 9), Buffer.from(`{"t":"${SECRET}"}`), randomBytes(5)]).toString("base64"),
    }));
    sources.push({ kind: "text", name: "query", text: `GET /x?secret=${encodeURIComponent(`${SECRET}/+`)}` });
    sources.push({ kind: "text", name: "dump", text: Buffer.from(SECRET).toString("hex") });
    sources.push({ kind: "text", name: "clean", text: `nothing here but ${SECRET.slice(0, 10)}` });
    const found = await scanForSecrets({ planted: SECRET }, sources);
    expect(found.map((f) => `${f.form} @ ${f.where}`)).toEqual(["base64 @ blob 0", "base64 @ blob 1", "base64 @ blob 2", "plain @ query", "hex @ dump"]);
    for (const f of found) expect(f.excerpt).not.toContain(SECRET);
    expect(found[3]!.excerpt).toContain("secret=<planted>");
  });

  it("reads an email's decoded parts and a request's headers", async () => {
    const raw = [
      "From: a@example.test", "To: b@example.test", "Subject: hi", "MIME-Version: 1.0",
      "Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: quoted-printable", "",
      // A soft line break splits the secret in the raw text; only the decoded body holds it whole.
      `token: ${SECRET.slice(0, 10)}=\r\n${SECRET.slice(10)}`, "",
    ].join("\r\n");
    expect(await places([{ kind: "email", name: "mail 1", raw }])).toEqual(["plain @ mail 1 (text)"]);
    expect(await places([{ kind: "http-request", name: "hook", headers: { "x-api-key": SECRET }, body: "{}" }])).toEqual([
      "plain @ hook (request line and headers)",
    ]);
  });

  it("reads every type of Redis value under the prefix, and key names", async () => {
    await redis.set(`${prefix}:s`, `x${SECRET}`);
    await redis.hset(`${prefix}:h`, "data", JSON.stringify({ token: SECRET }));
    await redis.rpush(`${prefix}:l`, "a", SECRET);
    await redis.sadd(`${prefix}:set`, SECRET);
    await redis.zadd(`${prefix}:z`, 1, SECRET);
    await redis.xadd(`${prefix}:x`, "*", "f", SECRET);
    await redis.set(`${prefix}:k:${SECRET}`, "1");
    await redis.set(`other_${prefix}:s`, SECRET); // another prefix: not this fleet's
    try {
      expect((await places([{ kind: "redis", redis, prefix }])).sort()).toEqual(
        ["s", "h", "l", "set", "z", "x", `k:${SECRET}`].map((k) => `plain @ Redis key ${prefix}:${k}`).sort(),
      );
    } finally {
      await redis.del(`other_${prefix}:s`);
    }
  });

  it("searches every text-like column of every table, including one added after the scanner was written", async () => {
    await db.query(`CREATE TABLE "ScanProbe" (id int PRIMARY KEY, note varchar(200), doc jsonb, tags text[], raw bytea)`);
    await db.query(`INSERT INTO "ScanProbe" VALUES (1, $1, $2, $3, $4), (2, 'clean', '{}', '{}', $4)`, [
      `see ${SECRET}`, JSON.stringify({ deep: { t: SECRET } }), ["a", SECRET], Buffer.from(SECRET),
    ]);
    try {
      expect((await places([{ kind: "postgres", url: process.env.DATABASE_URL! }])).sort()).toEqual([
        "plain @ PostgreSQL ScanProbe.doc row 1", "plain @ PostgreSQL ScanProbe.note row 1", "plain @ PostgreSQL ScanProbe.tags row 1",
      ]);
    } finally {
      await db.query(`DROP TABLE "ScanProbe"`);
    }
  });
});
