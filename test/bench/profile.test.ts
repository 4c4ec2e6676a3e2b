import { pathToFileURL } from "node:url";
import { describe, expect, it } from "vitest";
import { groupOf, groupTable, summarizeProfile, type CpuProfile } from "../../bench/profile.js";
import { PROJECT_ROOT } from "../../src/paths.js";

const project = `${pathToFileURL(PROJECT_ROOT).href}/dist/src/fleet/attempts.js`;
const frame = (functionName: string, url: string, lineNumber = 0) => ({ functionName, url, lineNumber });

describe("CPU profile summary", () => {
  it("groups frames by package, project file or V8 pseudo-frame", () => {
    expect(groupOf(frame("parse", "file:///x/node_modules/pg-protocol/dist/parser.js"))).toBe("node_modules/pg-protocol");
    expect(groupOf(frame("run", "file:///x/node_modules/@prisma/client/runtime/client.js"))).toBe("node_modules/@prisma/client");
    expect(groupOf(frame("a", "file:///x/node_modules/bullmq/node_modules/semver/index.js"))).toBe("node_modules/semver");
    expect(groupOf(frame("recordQr", project))).toBe("dist/src/fleet/attempts.js");
    expect(groupOf(frame("writeGeneric", "node:internal/stream_base_commons"))).toBe("(node internals)");
    expect(groupOf(frame("(program)", ""))).toBe("(node internals)");
    expect(groupOf(frame("(garbage collector)", ""))).toBe("(garbage collector)");
    expect(groupOf(frame("(idle)", ""))).toBe("(idle)");
    expect(groupOf(frame("f", "wasm://wasm/00d1cb12"))).toBe("(wasm)");
  });

  it("adds up self time per function and per group from samples and time deltas", () => {
    const profile: CpuProfile = {
      nodes: [
        { id: 1, callFrame: frame("(root)", "") },
        { id: 2, callFrame: frame("recordQr", project, 41) },
        { id: 3, callFrame: frame("recordQr", project, 41) }, // same function, another call path
        { id: 4, callFrame: frame("(idle)", "") },
      ],
      // Each sample lasts until the next: 2 → 1 ms, 3 → 3 ms, 4 → 4 ms, 2 → 4 ms (the last repeats the one before).
      samples: [2, 3, 4, 2],
      timeDeltas: [0, 1000, 3000, 4000],
    };
    const s = summarizeProfile(profile);
    // Idle is counted apart: the percentages are of the time the thread was busy.
    expect(s).toMatchObject({ totalMs: 8, idleMs: 4 });
    expect(s.top[0]).toEqual({ function: "recordQr", location: "dist/src/fleet/attempts.js:42", ms: 8, pct: 100 });
    expect(s.groups).toEqual([{ group: "dist/src/fleet/attempts.js", ms: 8, pct: 100 }]);
    expect(groupTable(s, 50)).toMatch(/dist\/src\/fleet\/attempts\.js\s+8\.0\s+100\.0/);
  });
});
