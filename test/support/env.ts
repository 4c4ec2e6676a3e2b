import { inject } from "vitest";

// The code under test reads configuration only through src/config.ts; tests hand it this
// run's own database, Redis prefix and keys through the environment.
process.env.DATABASE_URL = inject("databaseUrl");
process.env.QRFLEET_REDIS_PREFIX = inject("redisPrefix");
process.env.QRFLEET_SECRET_KEY = inject("secretKey");
process.env.QRFLEET_ADMIN_TOKEN = "test-admin-token-0123456789";
process.env.LOG_LEVEL = process.env.LOG_LEVEL ?? "silent";
