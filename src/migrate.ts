import { createHash, randomUUID } from "node:crypto";
import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import pg from "pg";
import { maskSecrets } from "./log.js";
import { MIGRATIONS_DIR } from "./paths.js";

/**
 * Applies prisma/migrations/<name>/migration.sql in name order and records each one in
 * Prisma's own _prisma_migrations table, exactly as `prisma migrate deploy` does, so that
 * `prisma migrate status` agrees. No schema engine is needed (it cannot be downloaded here).
 */

/** The advisory lock key Prisma's migrate holds; using it keeps us and Prisma mutually exclusive. */
const PRISMA_ADVISORY_LOCK = 72707369;


const CREATE_TABLE = `CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
  "id" VARCHAR(36) PRIMARY KEY NOT NULL,
  "checksum" VARCHAR(64) NOT NULL,
  "finished_at" TIMESTAMPTZ,
  "migration_name" VARCHAR(255) NOT NULL,
  "logs" TEXT,
  "rolled_back_at" TIMESTAMPTZ,
  "started_at" TIMESTAMPTZ NOT NULL DEFAULT now(),
  "applied_steps_count" INTEGER NOT NULL DEFAULT 0
)`;

export class MigrationError extends Error {
  readonly code = "migration_failed";
  override name = "MigrationError";
}

export interface MigrationResult {
  applied: string[];
  alreadyApplied: string[];
  checksumChanged: string[];
}

interface MigrationFile {
  name: string;
  sql: string;
  checksum: string;
}

async function readMigrations(dir: string): Promise<MigrationFile[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  const names = entries.filter((e) => e.isDirectory()).map((e) => e.name).sort();
  return Promise.all(
    names.map(async (name) => {
      const bytes = await readFile(path.join(dir, name, "migration.sql"));
      return { name, sql: bytes.toString("utf8"), checksum: createHash("sha256").update(bytes).digest("hex") };
    }),
  );
}

export async function migrate(databaseUrl: string, dir = MIGRATIONS_DIR): Promise<MigrationResult> {
  const files = await readMigrations(dir);
  const client = new pg.Client({ connectionString: databaseUrl, connectionTimeoutMillis: 10_000 });
  await client.connect();
  try {
    await client.query("SELECT pg_advisory_lock($1)", [PRISMA_ADVISORY_LOCK]);
    try {
      return await applyPending(client, files);
    } finally {
      await client.query("SELECT pg_advisory_unlock($1)", [PRISMA_ADVISORY_LOCK]);
    }
  } finally {
    await client.end();
  }
}

/** Migrations of `dir` the database has not finished applying, in order; all of them before the first run. */
export async function pendingMigrations(client: pg.ClientBase, dir = MIGRATIONS_DIR): Promise<string[]> {
  const files = await readMigrations(dir);
  const { rows } = await client.query<{ name: string }>(
    `SELECT migration_name AS name FROM "_prisma_migrations" WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL`,
  ).catch((err: { code?: string }) => {
    // 42P01: no such table, a database never migrated.
    if (err.code === "42P01") return { rows: [] };
    throw err;
  });
  const done = new Set(rows.map((r) => r.name));
  return files.map((f) => f.name).filter((name) => !done.has(name));
}

async function applyPending(client: pg.Client, files: MigrationFile[]): Promise<MigrationResult> {
  await client.query(CREATE_TABLE);
  const { rows } = await client.query<{ migration_name: string; checksum: string; finished_at: Date | null }>(
    `SELECT migration_name, checksum, finished_at FROM "_prisma_migrations" WHERE rolled_back_at IS NULL`,
  );
  const broken = rows.find((r) => r.finished_at === null);
  if (broken) {
    throw new MigrationError(
      `migration ${broken.migration_name} failed earlier and was not resolved; fix the database, then delete or ` +
        `mark its row in _prisma_migrations as rolled back (prisma migrate resolve --rolled-back ${broken.migration_name})`,
    );
  }
  const done = new Map(rows.map((r) => [r.migration_name, r.checksum]));
  const result: MigrationResult = { applied: [], alreadyApplied: [], checksumChanged: [] };
  for (const file of files) {
    const recorded = done.get(file.name);
    if (recorded !== undefined) {
      result.alreadyApplied.push(file.name);
      if (recorded !== file.checksum) result.checksumChanged.push(file.name);
      continue;
    }
    await applyOne(client, file);
    result.applied.push(file.name);
  }
  return result;
}

async function applyOne(client: pg.Client, file: MigrationFile): Promise<void> {
  const id = randomUUID();
  await client.query(
    `INSERT INTO "_prisma_migrations" (id, checksum, migration_name, started_at, applied_steps_count)
     VALUES ($1, $2, $3, now(), 0)`,
    [id, file.checksum, file.name],
  );
  try {
    // One simple-query call: PostgreSQL runs a multi-statement string as one implicit transaction.
    await client.query(file.sql);
  } catch (err) {
    const message = maskSecrets(err instanceof Error ? err.message : String(err));
    await client.query(`UPDATE "_prisma_migrations" SET logs = $2 WHERE id = $1`, [id, message]);
    throw new MigrationError(`migration ${file.name} failed: ${message}`);
  }
  await client.query(
    `UPDATE "_prisma_migrations" SET finished_at = now(), applied_steps_count = 1 WHERE id = $1`,
    [id],
  );
}
