import { describe, expect, it } from "vitest";
import { CLOCK_TICKS, cpuMsOf, memoryOf, parseStat, readStat, statusKb, ticksToMs } from "../../bench/procfs.js";

// A real line of /proc/<pid>/stat (PostgreSQL's postmaster), fields 14-17 = 1 28 480 498.
const POSTMASTER =
  "2192 (postgres) S 1 2192 2192 0 -1 4194304 11089 574510 0 29 1 28 480 498 20 0 1 0 3366 222445568 7380 18446744073709551615 0 0 0 0 0 0 0 24129536 84487 1 0 0 17 0 0 0 0 0 0";

describe("/proc parsing", () => {
  it("reads pid, name, parent and the four CPU fields", () => {
    expect(parseStat(POSTMASTER)).toEqual({ pid: 2192, comm: "postgres", ppid: 1, utime: 1, stime: 28, cutime: 480, cstime: 498 });
  });

  it("counts fields from the last parenthesis: a command name may hold spaces and parentheses", () => {
    const tricky = POSTMASTER.replace("(postgres)", "(a) b (c) d)");
    expect(parseStat(tricky)).toMatchObject({ comm: "a) b (c) d", ppid: 1, utime: 1, stime: 28, cutime: 480, cstime: 498 });
  });

  it("refuses what is not a stat line", () => {
    expect(() => parseStat("hello")).toThrow(/stat line/);
    expect(() => parseStat("12 (x) S 1 2")).toThrow(/field/);
  });

  it("reads kB lines of /proc/<pid>/status", () => {
    const status = "Name:\tnode\nVmHWM:\t   29792 kB\nVmRSS:\t    7380 kB\n";
    expect(statusKb(status, "VmHWM")).toBe(29792);
    expect(statusKb(status, "VmRSS")).toBe(7380);
    expect(statusKb("Name:\tnode\n", "VmHWM")).toBeNull();
  });

  it("converts clock ticks with the machine's CLK_TCK, and reads this very process", () => {
    expect(CLOCK_TICKS).toBeGreaterThan(0);
    expect(ticksToMs(CLOCK_TICKS)).toBe(1000);
    expect(readStat(process.pid)).toMatchObject({ pid: process.pid, ppid: process.ppid });
    expect(cpuMsOf(process.pid)).toBeGreaterThan(0);
    const mem = memoryOf(process.pid)!;
    expect(mem.peakMb).toBeGreaterThanOrEqual(mem.rssMb);
    expect(readStat(2 ** 30)).toBeNull();
  });
});
