import { createHash } from "node:crypto";
import { mkdtemp, mkdir, writeFile, cp } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import pg from "pg";
import { afterEach, describe, expect, it } from "vitest";
import { migrate, MigrationError } from "../src/migrate.js";
import { MIGRATIONS_DIR } from "../src/paths.js";
import { openDatabase } from "../src/db.js";
import { diffMigrationsToSchema, EMPTY_MIGRATION } from "../scripts/schema-diff.js";
import { emptyDatabase } from "./support/db.js";
import { inject } from "vitest";

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

async function fresh() {
  const db = await emptyDatabase();
  cleanups.push(db.drop);
  return db.url;
}

async function rows(url: string, sql: string) {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query(sql)).rows;
  } finally {
    await c.end();
  }
}

describe("qrfleet migrate", () => {
  it("applies every migration to an empty database and records it as Prisma does", async () => {
    const url = await fresh();
    const first = await migrate(url);
    expect(first.applied.length).toBeGreaterThan(0);
    const recorded = await rows(url, `SELECT migration_name, checksum, finished_at, applied_steps_count FROM "_prisma_migrations" ORDER BY migration_name`);
    expect(recorded.map((r) => r.migration_name)).toEqual(first.applied);
    for (const r of recorded) {
      expect(r.finished_at).not.toBeNull();
      expect(r.applied_steps_count).toBe(1);
      const { readFile } = await import("node:fs/promises");
      const bytes = await readFile(path.join(MIGRATIONS_DIR, r.migration_name, "migration.sql"));
      expect(r.checksum).toBe(createHash("sha256").update(bytes).digest("hex"));
    }
    const again = await migrate(url);
    expect(again.applied).toEqual([]);
    expect(again.alreadyApplied).toEqual(first.applied);
  });

  it("runs concurrently from several processes without applying anything twice", async () => {
    const url = await fresh();
    const results = await Promise.all([migrate(url), migrate(url), migrate(url)]);
    expect(results.map((r) => r.applied.length).filter((n) => n > 0)).toHaveLength(1);
  });

  it("records a failed migration and refuses to continue until it is resolved", async () => {
    const url = await fresh();
    const dir = await mkdtemp(path.join(tmpdir(), "qrfleet-mig-"));
    await cp(MIGRATIONS_DIR, dir, { recursive: true });
    await mkdir(path.join(dir, "29990101000000_broken"));
    await writeFile(path.join(dir, "29990101000000_broken", "migration.sql"), "CREATE TABLE ok_one (id int);\nSELECT * FROM no_such_table;");
    await expect(migrate(url, dir)).rejects.toThrow(MigrationError);
    const [row] = await rows(url, `SELECT finished_at, logs FROM "_prisma_migrations" WHERE migration_name = '29990101000000_broken'`);
    expect(row.finished_at).toBeNull();
    expect(row.logs).toMatch(/no_such_table/);
    // The whole file ran as one transaction: its first statement was rolled back too.
    expect(await rows(url, `SELECT to_regclass('ok_one') AS t`)).toEqual([{ t: null }]);
    await expect(migrate(url, dir)).rejects.toThrow(/failed earlier/);
  });

  it("reports a migration whose file changed after it was applied", async () => {
    const url = await fresh();
    const dir = await mkdtemp(path.join(tmpdir(), "qrfleet-mig-"));
    await cp(MIGRATIONS_DIR, dir, { recursive: true });
    const first = await migrate(url, dir);
    const name = first.applied[0]!;
    await writeFile(path.join(dir, name, "migration.sql"), "-- edited\n", { flag: "a" });
    expect((await migrate(url, dir)).checksumChanged).toEqual([name]);
  });

  it("enforces at most one open QR session per instance in the database itself", async () => {
    const { db } = openDatabase(process.env.DATABASE_URL!, 2);
    try {
      const inst = await db.instance.create({
        data: { apiUrl: "http://127.0.0.1:1", idInstance: String(Date.now()), tokenCiphertext: new Uint8Array([1]) },
      });
      const base = { instanceId: inst.id, trigger: "admin" as const, maxAttempts: 1, backoffBaseMs: 1, backoffMaxMs: 1 };
      const open = await db.qrSession.create({ data: base });
      await expect(db.qrSession.create({ data: base })).rejects.toMatchObject({ code: "P2002" });
      await db.qrSession.update({ where: { id: open.id }, data: { status: "timed_out" } });
      await expect(db.qrSession.create({ data: base })).resolves.toBeTruthy();
    } finally {
      await db.$disconnect();
    }
  });

  it("has a migration for everything in schema.prisma (no drift)", async () => {
    const sql = await diffMigrationsToSchema({
      databaseUrl: inject("adminDatabaseUrl"),
      schemaPath: path.join(MIGRATIONS_DIR, "..", "schema.prisma"),
      migrationsDir: MIGRATIONS_DIR,
    });
    expect(sql).toBe(EMPTY_MIGRATION);
  });
});
