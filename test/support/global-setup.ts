import { randomBytes } from "node:crypto";
import pg from "pg";
import type { TestProject } from "vitest/node";
import { migrate } from "../../src/migrate.js";

const ADMIN_URL = process.env.QRFLEET_TEST_ADMIN_URL ?? "postgresql://postgres@127.0.0.1:5432/postgres";

declare module "vitest" {
  export interface ProvidedContext {
    databaseUrl: string;
    adminDatabaseUrl: string;
    redisPrefix: string;
    secretKey: string;
  }
}

/** Each run gets its own database, created and migrated here and dropped after. */
export default async function setup(project: TestProject) {
  const name = `qrfleet_test_${Date.now().toString(36)}_${randomBytes(3).toString("hex")}`;
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE "${name}"`);
  await admin.end();
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  const databaseUrl = url.toString();
  await migrate(databaseUrl);
  project.provide("databaseUrl", databaseUrl);
  project.provide("adminDatabaseUrl", ADMIN_URL);
  project.provide("redisPrefix", `qrft_${randomBytes(4).toString("hex")}`);
  project.provide("secretKey", randomBytes(32).toString("base64"));
  return async () => {
    const client = new pg.Client({ connectionString: ADMIN_URL });
    await client.connect();
    await client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
    await client.end();
  };
}
