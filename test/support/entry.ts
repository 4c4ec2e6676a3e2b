import { readdirSync, statSync } from "node:fs";
import path from "node:path";

const ROOT = path.resolve(import.meta.dirname, "../..");
/** The directories whose TypeScript `npm run build` compiles into dist/. */
const SOURCES = ["src", "workers", "bench", "scripts"];

function newestSourceMs(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestSourceMs(full));
    else if (entry.name.endsWith(".ts")) newest = Math.max(newest, statSync(full).mtimeMs);
  }
  return newest;
}

let sourcesMs: number | undefined;

/**
 * How node runs a TypeScript entry of this repo in a child process: its build in dist/ when that
 * is newer than every source (`npm test` builds first, and a build starts in a fraction of tsx's
 * time), otherwise the source itself through tsx, so a test never runs stale code.
 */
export function nodeArgsFor(entry: string): string[] {
  const built = path.join(ROOT, "dist", entry.replace(/\.ts$/, ".js"));
  sourcesMs ??= Math.max(...SOURCES.map((d) => newestSourceMs(path.join(ROOT, d))));
  let builtMs = 0;
  try {
    builtMs = statSync(built).mtimeMs;
  } catch {
    // not built
  }
  return builtMs > sourcesMs ? [built] : ["--import", "tsx", path.join(ROOT, entry)];
}
