import { randomBytes } from "node:crypto";
import { inject } from "vitest";
import { createDatabase, dropDatabase } from "../../scripts/databases.js";
import { openDatabase, type Db } from "../../src/db.js";

export function testDb(): Db {
  return openDatabase(process.env.DATABASE_URL!, 5).db;
}

/** A brand-new empty database for tests of migration itself; dropped by the returned function. */
export async function emptyDatabase(): Promise<{ url: string; drop: () => Promise<void> }> {
  const adminUrl = inject("adminDatabaseUrl");
  const name = `qrfleet_empty_${randomBytes(4).toString("hex")}`;
  const url = await createDatabase(adminUrl, name);
  return { url, drop: () => dropDatabase(adminUrl, name) };
}
