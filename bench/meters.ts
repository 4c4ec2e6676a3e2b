import { readFileSync } from "node:fs";
import path from "node:path";
import { Redis } from "ioredis";
import pg from "pg";
import { childrenOf, cpuMsOf, forkingServerCpuMs, memoryOf, readStat } from "./procfs.js";

/** CPU and memory of the processes a phase measures, and of the machine-wide PostgreSQL and Redis. */

interface Reading {
  cpuMs: number;
  rssMb: number;
  peakMb: number;
}

/**
 * Sums a set of processes. A process that is gone keeps its last reading, so a daemon killed
 * mid-run still counts what it used until then (read it right before the kill to lose nothing).
 */
export class ProcessMeter {
  private readonly last = new Map<number, Reading>();
  /** Exited: their pid may be reused by another process, so they are no longer read. */
  private readonly retired = new Set<number>();

  add(pid: number): void {
    this.last.set(pid, { cpuMs: 0, rssMb: 0, peakMb: 0 });
  }

  /** Keeps the last reading of an exited process and never reads its pid again. */
  retire(pid: number): void {
    this.retired.add(pid);
    const last = this.last.get(pid);
    if (last) this.last.set(pid, { ...last, rssMb: 0 });
  }

  /** Reads every live process now; returns each one's reading, in the order they were added. */
  each(): Array<{ pid: number } & Reading> {
    this.read();
    return [...this.last].map(([pid, reading]) => ({ pid, ...reading }));
  }

  /** Reads every live process now; returns the sums (RSS counts only the live ones). */
  read(): { cpuMs: number; rssMb: number; peakMb: number } {
    let cpuMs = 0;
    let rssMb = 0;
    let peakMb = 0;
    for (const [pid, previous] of this.last) {
      if (this.retired.has(pid)) {
        cpuMs += previous.cpuMs;
        peakMb += previous.peakMb;
        continue;
      }
      const cpu = cpuMsOf(pid);
      const mem = memoryOf(pid);
      const now = cpu === null || mem === null ? { ...previous, rssMb: 0 } : { cpuMs: cpu, rssMb: mem.rssMb, peakMb: mem.peakMb };
      this.last.set(pid, now);
      cpuMs += now.cpuMs;
      rssMb += now.rssMb;
      peakMb += now.peakMb;
    }
    return { cpuMs, rssMb, peakMb };
  }
}

export interface Services {
  postmasterPid: number | null;
  redisPid: number | null;
}

/**
 * PostgreSQL's postmaster is the first line of <data_directory>/postmaster.pid; if that file
 * cannot be read (another user's data directory), the postgres process whose parent is not a
 * postgres process. Redis says its pid in INFO server. Either may live where /proc cannot see
 * it (a container): then its figures are null.
 */
export async function findServices(adminUrl: string, redisUrl: string): Promise<Services> {
  return { postmasterPid: await postmasterPid(adminUrl), redisPid: await redisPid(redisUrl) };
}

async function postmasterPid(adminUrl: string): Promise<number | null> {
  const client = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 10_000 });
  await client.connect();
  try {
    const { rows } = await client.query<{ data_directory: string }>("SHOW data_directory");
    const pid = Number(readFileSync(path.join(rows[0]!.data_directory, "postmaster.pid"), "utf8").split("\n")[0]);
    if (readStat(pid)) return pid;
  } catch {
    // fall through to the process table
  } finally {
    await client.end();
  }
  const postgres = childrenOf(1).find((p) => p.comm === "postgres" || p.comm === "postmaster");
  return postgres?.pid ?? null;
}

async function redisPid(redisUrl: string): Promise<number | null> {
  const redis = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1, connectTimeout: 5_000 });
  try {
    await redis.connect();
    const info = await redis.info("server");
    const pid = Number(/^process_id:(\d+)/m.exec(info)?.[1]);
    return pid > 0 && readStat(pid) ? pid : null;
  } catch {
    return null;
  } finally {
    redis.disconnect();
  }
}

/** Total CPU so far of each service, in ms; a phase's figure is the difference of two of these. */
export function serviceCpuMs(services: Services): { postgres: number | null; redis: number | null } {
  return {
    postgres: services.postmasterPid === null ? null : forkingServerCpuMs(services.postmasterPid),
    redis: services.redisPid === null ? null : cpuMsOf(services.redisPid),
  };
}

/** Work the services did, counted by themselves: a phase's figure is the difference of two readings. */
export interface ServiceCounters {
  /** Committed and rolled-back transactions of every database (each statement outside a transaction is one). */
  postgresTransactions: number;
  /** Commands Redis processed, every client. */
  redisCommands: number;
}

/**
 * PostgreSQL flushes a backend's counts at most once a second while it works and within 10 s once
 * it idles, so a reading right after a phase can miss its last second or so: the figure is close, not exact.
 */
export async function readServiceCounters(adminUrl: string, redisUrl: string): Promise<ServiceCounters | null> {
  const client = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 10_000 });
  const redis = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1, connectTimeout: 5_000 });
  try {
    await Promise.all([client.connect(), redis.connect()]);
    const [{ rows }, info] = await Promise.all([
      client.query<{ n: string }>("SELECT sum(xact_commit + xact_rollback)::text AS n FROM pg_stat_database"),
      redis.info("stats"),
    ]);
    const commands = Number(/^total_commands_processed:(\d+)/m.exec(info)?.[1]);
    return { postgresTransactions: Number(rows[0]!.n), redisCommands: commands };
  } catch {
    return null;
  } finally {
    await client.end().catch(() => undefined);
    redis.disconnect();
  }
}
