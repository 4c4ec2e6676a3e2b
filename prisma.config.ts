import { defineConfig } from "prisma/config";

// The CLI is used for `generate` and for `migrate status`; migrations themselves are
// applied by our own migrator (src/migrate.ts), which records them exactly as Prisma does.
export default defineConfig({
  schema: "prisma/schema.prisma",
  migrations: { path: "prisma/migrations" },
  datasource: { url: process.env.DATABASE_URL ?? "postgresql://postgres@127.0.0.1:5432/qrfleet" },
});
