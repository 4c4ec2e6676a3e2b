import { randomBytes } from "node:crypto";
import pg from "pg";
import type { TestProject } from "vitest/node";
import { createDatabase, dropDatabase } from "../../scripts/databases.js";
import { migrate } from "../../src/migrate.js";

const ADMIN_URL = process.env.QRFLEET_TEST_ADMIN_URL ?? "postgresql://postgres@127.0.0.1:5432/postgres";

declare module "vitest" {
  export interface ProvidedContext {
    templateDatabase: string;
    adminDatabaseUrl: string;
    secretKey: string;
  }
}

async function admin<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: ADMIN_URL });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/**
 * The run migrates one template database; every test file gets its own copy of it (see env.ts),
 * so a daemon's reconciler in one file never picks up another file's sessions. All are dropped after.
 */
export default async function setup(project: TestProject) {
  const run = `qrfleet_test_${Date.now().toString(36)}_${randomBytes(3).toString("hex")}`;
  const template = `${run}_tpl`;
  await migrate(await createDatabase(ADMIN_URL, template));
  project.provide("templateDatabase", template);
  project.provide("adminDatabaseUrl", ADMIN_URL);
  project.provide("secretKey", randomBytes(32).toString("base64"));
  return async () => {
    await admin(async (c) => {
      const { rows } = await c.query<{ datname: string }>(`SELECT datname FROM pg_database WHERE datname LIKE $1`, [`${run}%`]);
      for (const { datname } of rows) await dropDatabase(ADMIN_URL, datname);
    });
  };
}
