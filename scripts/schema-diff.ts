// Dev-time only: computes `prisma migrate diff --from-migrations --to-schema --script` with
// Prisma's schema engine compiled to wasm, because the native engine cannot be downloaded here.
import { readFile, readdir } from "node:fs/promises";
import { createRequire } from "node:module";
import path from "node:path";
import pg from "pg";
import { PrismaPg } from "@prisma/adapter-pg";
import { bindMigrationAwareSqlAdapterFactory } from "@prisma/driver-adapter-utils";

const PG_CHAR = 18;
const PG_NAME = 19;
const PG_TEXT = 25;
export const EMPTY_MIGRATION = "-- This is an empty migration.";

function asText(res: { fields?: { dataTypeID: number }[] } | undefined) {
  for (const field of res?.fields ?? []) {
    if (field.dataTypeID === PG_CHAR || field.dataTypeID === PG_NAME) field.dataTypeID = PG_TEXT;
  }
  return res;
}

/** The engine introspects catalog columns of type "char" and name, which the adapter cannot read. */
function reportCatalogColumnsAsText(): void {
  for (const proto of [pg.Client.prototype, pg.Pool.prototype] as unknown as Patchable[]) {
    if (proto.__patched) continue;
    const original = proto.query;
    proto.query = function (this: unknown, ...args: unknown[]) {
      const last = args.length - 1;
      const cb = args[last];
      if (typeof cb === "function") {
        args[last] = (err: unknown, res: never) => (cb as (e: unknown, r: unknown) => void)(err, asText(res));
      }
      const result = original.apply(this, args);
      if (result && typeof (result as Promise<never>).then === "function") return (result as Promise<never>).then(asText);
      return result;
    };
    proto.__patched = true;
  }
}

type Patchable = { query: (...args: unknown[]) => unknown; __patched?: boolean };
type WasmApi = {
  instantiate(bytes: Uint8Array, imports: object): Promise<{ instance: { exports: Record<string, unknown> } }>;
};
type Engine = { diff(params: unknown): Promise<{ stdout?: string | null; exitCode: number }> };

async function loadEngine(): Promise<{ SchemaEngine: { new: (...a: unknown[]) => Promise<Engine> } }> {
  const require = createRequire(import.meta.url);
  const bgPath = require.resolve("@prisma/schema-engine-wasm/schema_engine_bg");
  const bg = (await import(bgPath)) as Record<string, unknown> & { __wbg_set_wasm(x: unknown): void };
  const wasmBytes = await readFile(path.join(path.dirname(bgPath), "schema_engine_bg.wasm"));
  const wasm = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;
  const { instance } = await wasm.instantiate(wasmBytes, { "./schema_engine_bg.js": bg });
  bg.__wbg_set_wasm(instance.exports);
  (instance.exports.__wbindgen_start as () => void)();
  return bg as unknown as { SchemaEngine: { new: (...a: unknown[]) => Promise<Engine> } };
}

export interface DiffOptions {
  databaseUrl: string;
  schemaPath: string;
  migrationsDir: string;
}

/** SQL that takes a database from the committed migrations to the schema (EMPTY_MIGRATION if none). */
export async function diffMigrationsToSchema(opts: DiffOptions): Promise<string> {
  reportCatalogColumnsAsText();
  const url = new URL(opts.databaseUrl);
  // Discrete fields, not a connection string: the engine makes its shadow database by
  // spreading this config with another `database`, which a connection string would override.
  const adapter = new PrismaPg({
    host: url.hostname,
    port: Number(url.port || 5432),
    user: decodeURIComponent(url.username || "postgres"),
    password: decodeURIComponent(url.password),
    database: url.pathname.slice(1),
    idleTimeoutMillis: 100,
  });
  const { SchemaEngine } = await loadEngine();
  const schemaText = await readFile(opts.schemaPath, "utf8");
  const engine = await SchemaEngine.new(
    { datamodels: [[opts.schemaPath, schemaText]] },
    () => {},
    bindMigrationAwareSqlAdapterFactory(adapter as never),
  );
  const lock = await readFile(path.join(opts.migrationsDir, "migration_lock.toml"), "utf8").catch(
    () => 'provider = "postgresql"\n',
  );
  const dirs = (await readdir(opts.migrationsDir, { withFileTypes: true }).catch(() => []))
    .filter((d) => d.isDirectory())
    .map((d) => d.name)
    .sort();
  const migrationDirectories = await Promise.all(
    dirs.map(async (dir) => ({
      path: dir,
      migrationFile: {
        path: "migration.sql",
        content: { tag: "ok", value: await readFile(path.join(opts.migrationsDir, dir, "migration.sql"), "utf8") },
      },
    })),
  );
  const result = await engine.diff({
    from: {
      tag: "migrations",
      baseDir: opts.migrationsDir,
      lockfile: { path: "migration_lock.toml", content: lock },
      shadowDbInitScript: "",
      migrationDirectories,
    },
    to: { tag: "schemaDatamodel", files: [{ path: opts.schemaPath, content: schemaText }] },
    script: true,
    exitCode: null,
    filters: { externalTables: [], externalEnums: [] },
  });
  return (result.stdout ?? "").trim();
}
