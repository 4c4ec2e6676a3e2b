import { PrismaPg } from "@prisma/adapter-pg";
import { PrismaClient } from "./generated/prisma/client.js";

export type Db = PrismaClient;
export { Prisma } from "./generated/prisma/client.js";
export type * from "./generated/prisma/client.js";

/** Prisma over the pg driver adapter: no query engine binary at run time. */
export function createDb(databaseUrl: string, poolSize = 20): Db {
  // The wait covers queueing for a pooled connection too: 10,000 sessions starting at once queue
  // for ~20 s at the benchmark's pool size, which is slow but fine; failing them is not.
  const adapter = new PrismaPg({ connectionString: databaseUrl, max: poolSize, connectionTimeoutMillis: 60_000 });
  // Thousands of sessions can store their first QR in the same second; waiting for a pooled
  // connection is normal then, and must not fail the write (Prisma's default maxWait is 2 s).
  return new PrismaClient({ adapter, transactionOptions: { maxWait: 30_000, timeout: 30_000 } });
}

/** Postgres unique_violation surfaced by Prisma (P2002) or raw SQL (23505). */
export function isUniqueViolation(err: unknown): boolean {
  const e = err as { code?: string; cause?: { code?: string; originalCode?: string } } | null;
  return e?.code === "P2002" || e?.code === "23505" || e?.cause?.originalCode === "23505";
}
