import { randomBytes } from "node:crypto";
import { inject } from "vitest";
import { createDatabase } from "../../scripts/databases.js";

// The code under test reads configuration only through src/config.ts; each test file hands it
// its own database (a copy of the run's migrated template), Redis prefix and keys.
const template = inject("templateDatabase");
const name = `${template.replace(/_tpl$/, "")}_${randomBytes(4).toString("hex")}`;

process.env.DATABASE_URL = await createDatabase(inject("adminDatabaseUrl"), name, template);
process.env.QRFLEET_REDIS_PREFIX = `qrft_${randomBytes(5).toString("hex")}`;
process.env.QRFLEET_SECRET_KEY = inject("secretKey");
process.env.QRFLEET_ADMIN_TOKEN = "test-admin-token-0123456789";
process.env.LOG_LEVEL = process.env.LOG_LEVEL ?? "silent";
