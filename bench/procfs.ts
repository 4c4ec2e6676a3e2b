import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";

/**
 * CPU and memory of a process as Linux accounts them, read from /proc so the figures are the
 * kernel's and cover every thread (libuv's pool, V8's GC helpers), not only what Node reports.
 */

export interface ProcStat {
  pid: number;
  comm: string;
  ppid: number;
  /** Clock ticks (see CLOCK_TICKS) spent in user and kernel mode by this process. */
  utime: number;
  stime: number;
  /** Ticks of children this process has waited for, i.e. exited ones. */
  cutime: number;
  cstime: number;
}

/**
 * Parses /proc/<pid>/stat. The command name (field 2) is in parentheses and may itself contain
 * spaces and parentheses, so fields are counted from the last ")".
 */
export function parseStat(text: string): ProcStat {
  const open = text.indexOf("(");
  const close = text.lastIndexOf(")");
  if (open < 0 || close < open) throw new Error(`not a /proc stat line: ${JSON.stringify(text.slice(0, 80))}`);
  // rest[0] is field 3 (state); field n is rest[n - 3].
  const rest = text.slice(close + 2).trim().split(/\s+/);
  const field = (n: number) => {
    const value = Number(rest[n - 3]);
    if (!Number.isFinite(value)) throw new Error(`field ${n} of a /proc stat line is not a number`);
    return value;
  };
  return {
    pid: Number(text.slice(0, open).trim()),
    comm: text.slice(open + 1, close),
    ppid: field(4),
    utime: field(14),
    stime: field(15),
    cutime: field(16),
    cstime: field(17),
  };
}

/** Kilobytes of a `Key:   123 kB` line of /proc/<pid>/status, or null when absent. */
export function statusKb(text: string, key: "VmHWM" | "VmRSS"): number | null {
  const match = new RegExp(`^${key}:\\s+(\\d+)\\s+kB`, "m").exec(text);
  return match ? Number(match[1]) : null;
}

/** `getconf CLK_TCK`: 100 on nearly every Linux, read rather than assumed. */
export const CLOCK_TICKS: number = (() => {
  try {
    const value = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim());
    return value > 0 ? value : 100;
  } catch {
    return 100;
  }
})();

export const ticksToMs = (ticks: number) => (ticks * 1000) / CLOCK_TICKS;

/** Null once the process is gone (or was never visible, as in another PID namespace). */
export function readStat(pid: number): ProcStat | null {
  try {
    return parseStat(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return null;
  }
}

/** utime + stime of a live process, in ms. */
export function cpuMsOf(pid: number): number | null {
  const stat = readStat(pid);
  return stat ? ticksToMs(stat.utime + stat.stime) : null;
}

/** Peak (VmHWM) and current (VmRSS) resident memory, in MB. */
export function memoryOf(pid: number): { peakMb: number; rssMb: number } | null {
  try {
    const text = readFileSync(`/proc/${pid}/status`, "utf8");
    const peak = statusKb(text, "VmHWM");
    const rss = statusKb(text, "VmRSS");
    return peak === null || rss === null ? null : { peakMb: peak / 1024, rssMb: rss / 1024 };
  } catch {
    return null;
  }
}

/** Every live process whose parent is `ppid`. */
export function childrenOf(ppid: number): ProcStat[] {
  const out: ProcStat[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    const stat = readStat(Number(name));
    if (stat && stat.ppid === ppid) out.push(stat);
  }
  return out;
}

/**
 * All CPU a server that forks a process per connection has used since it started, in ms: its
 * own, its exited children's (the kernel adds them to cutime/cstime when they are reaped) and
 * its live children's. PostgreSQL's backends come and go with connections, so this is the only
 * total that a delta over a phase can be taken of.
 */
export function forkingServerCpuMs(pid: number): number | null {
  const children = childrenOf(pid);
  const own = readStat(pid);
  if (!own) return null;
  const live = children.reduce((sum, c) => sum + c.utime + c.stime, 0);
  return ticksToMs(own.utime + own.stime + own.cutime + own.cstime + live);
}
