import { PrismaPg } from "@prisma/adapter-pg";
import pg from "pg";
import { PrismaClient } from "./generated/prisma/client.js";

export type Db = PrismaClient;
export type Sql = pg.Pool;
export { Prisma } from "./generated/prisma/client.js";
export type * from "./generated/prisma/client.js";

/** Prisma for the many small queries, and the same pg pool under it for the hot path's raw SQL. */
export interface Database {
  db: Db;
  sql: Sql;
}

/**
 * One pg pool shared by Prisma (through its driver adapter: no engine binary at run time) and by
 * the statements of the per-QR path, which are raw SQL because Prisma costs round trips there.
 * `db.$disconnect()` ends the pool.
 */
export function openDatabase(databaseUrl: string, poolSize = 20, onError?: (err: Error) => void): Database {
  const sql = new pg.Pool({
    connectionString: databaseUrl,
    max: poolSize,
    // Queueing for a connection is normal when thousands of sessions start at once; failing is not.
    connectionTimeoutMillis: 60_000,
    // Columns are `timestamp` without zone holding UTC (Prisma's mapping): so must `now()` be.
    options: "-c TimeZone=UTC",
  });
  // An idle connection that dies (PostgreSQL restarting) is replaced on the next query; without a
  // listener its error event would end the process.
  sql.on("error", (err) => onError?.(err));
  const adapter = new PrismaPg(sql, { disposeExternalPool: true });
  // Prisma's default wait for a transaction slot is 2 s; a burst of session starts can queue longer.
  const db = new PrismaClient({ adapter, transactionOptions: { maxWait: 30_000, timeout: 30_000 } });
  return { db, sql };
}

/** Postgres unique_violation surfaced by Prisma (P2002) or raw SQL (23505). */
export function isUniqueViolation(err: unknown): boolean {
  const e = err as { code?: string; cause?: { code?: string; originalCode?: string } } | null;
  return e?.code === "P2002" || e?.code === "23505" || e?.cause?.originalCode === "23505";
}

/**
 * Runs one statement again when PostgreSQL chose it as a deadlock's victim (40P01): the
 * statement was rolled back whole, so running it again is safe, and what it waited for has gone.
 * Statements that lock rows in one order still meet this when the rows' versions move under
 * them, which PostgreSQL asks applications to handle by retrying.
 */
export async function retryOnDeadlock<T>(statement: () => Promise<T>, tries = 4): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await statement();
    } catch (err) {
      if ((err as { code?: string }).code !== "40P01" || attempt >= tries) throw err;
      await new Promise((resolve) => setTimeout(resolve, Math.random() * 20 * attempt));
    }
  }
}
