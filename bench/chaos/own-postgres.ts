import { execFile } from "node:child_process";
import { chownSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import pg from "pg";
import { createDatabase } from "../../scripts/databases.js";
import { migrate } from "../../src/migrate.js";
import { freePort } from "../daemons.js";

/**
 * A PostgreSQL cluster of the fault run's own (initdb into a temp dir, pg_ctl on a free port,
 * trust auth), so restarting it never touches the machine's shared server on 5432. Every
 * scenario gets a copy of one migrated template database, as the test suite's global setup does.
 */

const BIN = process.env.QRFLEET_CHAOS_PG_BIN ?? "/usr/lib/postgresql/15/bin";
const run = promisify(execFile);
const TEMPLATE = "qrfleet_chaos_tpl";

export interface OwnPostgres {
  port: number;
  /** The URL of database `name` on this cluster. */
  url(name: string): string;
  /** A fresh migrated database, a copy of the template. */
  newDatabase(name: string): Promise<string>;
  stop(): Promise<void>;
  start(): Promise<void>;
  /** Fast shutdown (connections cut, as in a real restart), then start again after `downMs`. */
  restart(downMs: number): Promise<void>;
  /** Stops the cluster at once and deletes its directory. */
  destroy(): Promise<void>;
}

/** initdb refuses to run as root: as root, the cluster belongs to the `postgres` account. */
async function clusterOwner(): Promise<{ uid: number; gid: number } | null> {
  if (process.getuid?.() !== 0) return null;
  const [{ stdout: uid }, { stdout: gid }] = await Promise.all([run("id", ["-u", "postgres"]), run("id", ["-g", "postgres"])]);
  return { uid: Number(uid.trim()), gid: Number(gid.trim()) };
}

export async function startOwnPostgres(): Promise<OwnPostgres> {
  const dir = mkdtempSync(path.join(tmpdir(), "qrfleet-chaos-pg-"));
  const owner = await clusterOwner();
  if (owner) chownSync(dir, owner.uid, owner.gid);
  const data = path.join(dir, "data");
  const as = owner ?? {};
  const pgTool = (tool: string, args: string[]) => run(path.join(BIN, tool), args, { ...as, cwd: dir, timeout: 60_000 });
  await pgTool("initdb", ["-D", data, "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8"]);
  const port = await freePort();
  // The socket lives in the temp dir too; fsync off because nothing here must survive a power cut.
  const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200`;
  const start = async () => void (await pgTool("pg_ctl", ["-D", data, "-l", path.join(dir, "server.log"), "-o", options, "-w", "-t", "60", "start"]));
  const stop = async (mode = "fast") => void (await pgTool("pg_ctl", ["-D", data, "-m", mode, "-w", "-t", "60", "stop"]));
  const url = (name: string) => `postgresql://postgres@127.0.0.1:${port}/${name}`;
  await start();
  const cluster: OwnPostgres = {
    port,
    url,
    newDatabase: (name) => createDatabase(url("postgres"), name, TEMPLATE),
    stop: () => stop(),
    start,
    async restart(downMs) {
      await stop();
      await new Promise((r) => setTimeout(r, downMs));
      await start();
    },
    async destroy() {
      await stop("immediate").catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    await migrate(await createDatabase(url("postgres"), TEMPLATE));
    await disallowConnections(url("postgres"));
  } catch (err) {
    await cluster.destroy();
    throw err;
  }
  return cluster;
}

/** A template must have no session open on it while it is copied; the migrator's pool may linger. */
async function disallowConnections(adminUrl: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    await client.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`, [TEMPLATE]);
  } finally {
    await client.end();
  }
}
