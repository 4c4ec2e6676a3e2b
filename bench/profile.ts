import { readdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { PROJECT_ROOT } from "../src/paths.js";

/** Where a daemon's CPU went: a V8 .cpuprofile (node --cpu-prof) reduced to self time per function and per package. */

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

export interface CpuProfile {
  nodes: Array<{ id: number; callFrame: CallFrame }>;
  samples: number[];
  /** µs before each sample. */
  timeDeltas: number[];
}

export interface ProfileSummary {
  /** Sampled time the thread was busy (idle left out); percentages are of this. */
  totalMs: number;
  idleMs: number;
  top: Array<{ function: string; location: string; ms: number; pct: number }>;
  groups: Array<{ group: string; ms: number; pct: number }>;
}

const ROOT_URL = `${pathToFileURL(PROJECT_ROOT).href}/`;

/** The package or file a frame belongs to: node_modules/<pkg>, a project file, or one of V8's pseudo-frames. */
export function groupOf(frame: CallFrame): string {
  const { functionName, url } = frame;
  if (functionName === "(garbage collector)" || functionName === "(idle)") return functionName;
  if (functionName === "(program)" || functionName === "(root)" || url === "" || url.startsWith("node:")) return "(node internals)";
  // WebAssembly has no package path; in this daemon it is Prisma's query compiler.
  if (url.startsWith("wasm://")) return "(wasm)";
  const at = url.lastIndexOf("/node_modules/");
  if (at >= 0) {
    const parts = url.slice(at + "/node_modules/".length).split("/");
    return `node_modules/${parts[0]!.startsWith("@") ? `${parts[0]}/${parts[1]}` : parts[0]}`;
  }
  return shortUrl(url);
}

function shortUrl(url: string): string {
  return url.startsWith(ROOT_URL) ? url.slice(ROOT_URL.length) : url;
}

export function summarizeProfile(profile: CpuProfile, topN = 25): ProfileSummary {
  const frames = new Map(profile.nodes.map((n) => [n.id, n.callFrame]));
  const selfUs = new Map<number, number>();
  // As DevTools does: a sample lasts until the next one; the last lasts as long as the one before.
  for (let i = 0; i < profile.samples.length; i += 1) {
    const us = profile.timeDeltas[i + 1] ?? profile.timeDeltas[i] ?? 0;
    const id = profile.samples[i]!;
    selfUs.set(id, (selfUs.get(id) ?? 0) + Math.max(0, us));
  }
  const byFunction = new Map<string, { function: string; location: string; us: number }>();
  const byGroup = new Map<string, number>();
  let totalUs = 0;
  let idleUs = 0;
  for (const [id, us] of selfUs) {
    const frame = frames.get(id);
    if (!frame) continue;
    if (frame.functionName === "(idle)") {
      idleUs += us;
      continue;
    }
    totalUs += us;
    const name = frame.functionName || "(anonymous)";
    const location = frame.url ? `${shortUrl(frame.url)}:${frame.lineNumber + 1}` : "";
    const key = `${name}\u0000${location}`;
    const entry = byFunction.get(key) ?? { function: name, location, us: 0 };
    entry.us += us;
    byFunction.set(key, entry);
    const group = groupOf(frame);
    byGroup.set(group, (byGroup.get(group) ?? 0) + us);
  }
  const pct = (us: number) => (totalUs ? Math.round((us / totalUs) * 1000) / 10 : 0);
  const ms = (us: number) => Math.round(us / 100) / 10;
  return {
    totalMs: ms(totalUs),
    idleMs: ms(idleUs),
    top: [...byFunction.values()]
      .sort((a, b) => b.us - a.us)
      .slice(0, topN)
      .map((f) => ({ function: f.function, location: f.location, ms: ms(f.us), pct: pct(f.us) })),
    groups: [...byGroup.entries()].sort((a, b) => b[1] - a[1]).map(([group, us]) => ({ group, ms: ms(us), pct: pct(us) })),
  };
}

/** Text columns (the first `textColumns`) aligned left, figures right. */
function table(header: string[], rows: string[][], textColumns = 1): string {
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c]!.length)));
  const line = (cells: string[]) => cells.map((cell, c) => (c < textColumns ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join("  ");
  return [line(header), ...rows.map(line)].join("\n");
}

/** Groups of at least `minPct` of the time, then one line for the rest. */
export function groupTable(s: ProfileSummary, minPct = 0): string {
  const shown = s.groups.filter((g) => g.pct >= minPct);
  const rest = s.groups.slice(shown.length);
  const rows = shown.map((g) => [g.group, g.ms.toFixed(1), g.pct.toFixed(1)]);
  if (rest.length > 0) {
    const ms = rest.reduce((sum, g) => sum + g.ms, 0);
    rows.push([`(${rest.length} more, each under ${minPct} %)`, ms.toFixed(1), (s.totalMs ? (ms / s.totalMs) * 100 : 0).toFixed(1)]);
  }
  return table(["group", "self ms", "%"], rows);
}

export function describeProfile(s: ProfileSummary, source: string, thread = "a daemon"): string {
  return [
    `CPU profile of ${thread}: ${source}`,
    `busy: ${s.totalMs.toFixed(1)} ms sampled (idle ${s.idleMs.toFixed(1)} ms, left out of the percentages)`,
    "",
    `top ${s.top.length} functions by self time`,
    table(["function", "location", "self ms", "%"], s.top.map((f) => [f.function, f.location, f.ms.toFixed(1), f.pct.toFixed(1)]), 2),
    "",
    "self time by package",
    groupTable(s),
    "",
  ].join("\n");
}

/** The node flags that make a process write its CPU profile into `dir` when it exits. */
export const cpuProfileFlags = (dir: string) => ["--cpu-prof", "--cpu-prof-dir", dir];

/** node --cpu-prof names files CPU.<date>.<time>.<pid>.<thread>.<seq>.cpuprofile; thread 0 is the main one. */
function threadOf(file: string, who: string): string {
  const thread = /\.(\d+)\.\d+\.cpuprofile$/.exec(file)?.[1];
  return thread === undefined || thread === "0" ? `${who}: main thread` : `${who}: thread ${thread} (the mail thread)`;
}

/**
 * Summarises every .cpuprofile the daemon wrote into `dir` on exit (one per thread: the main one
 * and the mail thread) into one file; returns its path and the main thread's grouped table.
 */
export async function summarizeProfileDir(dir: string, who = "the daemon"): Promise<{ path: string; groups: string }> {
  const files = (await readdir(dir).catch(() => [] as string[])).filter((f) => f.endsWith(".cpuprofile")).sort();
  if (files.length === 0) throw new Error(`${who} wrote no .cpuprofile into ${dir} (it writes one only when it exits by itself, e.g. on SIGTERM)`);
  const sections: string[] = [];
  let groups = "";
  for (const file of files) {
    const source = path.join(dir, file);
    const summary = summarizeProfile(JSON.parse(await readFile(source, "utf8")) as CpuProfile);
    sections.push(describeProfile(summary, source, threadOf(file, who)));
    groups += `${threadOf(file, who)}:\n${groupTable(summary, 0.5)}\n\n`;
  }
  const out = path.join(dir, "summary.txt");
  await writeFile(out, sections.join("\n"));
  return { path: out, groups: groups.trimEnd() };
}
