import { readFileSync } from "node:fs";
import path from "node:path";
import { parse } from "yaml";

/** Readers of the deployment files as Docker and Compose read them, for the deploy tests. */

export const ROOT = path.resolve(import.meta.dirname, "../..");
export const read = (file: string) => readFileSync(path.join(ROOT, file), "utf8");

export interface ComposeService {
  image?: string;
  build?: { context: string; dockerfile: string };
  command?: string[];
  environment?: Record<string, string | number>;
  volumes?: string[];
  ports?: string[];
  restart?: string;
  healthcheck?: { test: string[] };
  depends_on?: Record<string, { condition: string }>;
}

export interface ComposeFile {
  services: Record<string, ComposeService>;
  volumes: Record<string, unknown>;
}

/** compose.yaml parsed with YAML merge keys (`<<: *daemon`), as Compose reads it. */
export function readCompose(): ComposeFile {
  return parse(read("deploy/compose.yaml"), { merge: true }) as ComposeFile;
}

/**
 * Compose's interpolation of one value: `${VAR}`, `${VAR:-default}`, `${VAR:?message}` (fails
 * when VAR is unset or empty, as `docker compose up` does) and `$$`.
 */
export function interpolate(value: string, env: Record<string, string>): string {
  return value.replace(/\$\$|\$\{([A-Z0-9_]+)(?::([-?])([^}]*))?\}/g, (whole, name: string | undefined, op?: string, arg?: string) => {
    if (whole === "$$") return "$";
    const set = env[name!];
    if (set !== undefined && set !== "") return set;
    if (op === "?") throw new Error(`required variable ${name} is missing a value: ${arg}`);
    return op === "-" ? arg! : "";
  });
}

/** The environment a service's container gets, with compose variables taken from `env`. */
export function serviceEnv(service: ComposeService, env: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(service.environment ?? {}).map(([k, v]) => [k, interpolate(String(v), env)]));
}

/** Names of .env.example's settings (lines `NAME=default`). */
export function envExampleSettings(): Map<string, string> {
  const lines = read(".env.example").split("\n").filter((line) => /^[A-Z0-9_]+=/.test(line));
  return new Map(lines.map((line) => [line.slice(0, line.indexOf("=")), line.slice(line.indexOf("=") + 1)]));
}

export interface Instruction {
  keyword: string;
  args: string;
}

/** Dockerfile instructions, with line continuations joined and comments dropped. */
export function readDockerfile(): Instruction[] {
  const joined = read("Dockerfile")
    .split("\n")
    .filter((line) => !/^\s*#/.test(line))
    .join("\n")
    .replace(/\\\n/g, " ");
  return joined
    .split("\n")
    .map((line) => line.trim())
    .filter(Boolean)
    .map((line) => {
      const [keyword, ...rest] = line.split(/\s+/);
      return { keyword: keyword!.toUpperCase(), args: rest.join(" ").trim() };
    });
}

/** The shell commands of a RUN (`a && b` is two), or of an exec-form CMD joined by spaces. */
export const shellCommands = (run: string) => run.split("&&").map((c) => c.trim().replace(/\s+/g, " "));
export const execForm = (args: string): string[] => JSON.parse(args) as string[];

/**
 * The commands README "Running it for real" tells users to run: the install line (`npm ci && …`)
 * split at `&&`, and the start command (`npm start`), from its sh code block.
 */
export function readmeCommands(): { install: string[]; start: string } {
  const section = read("README.md").split(/^## /m).find((s) => s.startsWith("Running it for real"));
  if (!section) throw new Error('README has no "Running it for real" section');
  const block = /```sh\n([\s\S]*?)```/.exec(section)?.[1] ?? "";
  const lines = block.split("\n").map((line) => line.replace(/#.*$/, "").trim()).filter(Boolean);
  const install = lines.find((line) => line.startsWith("npm ci"));
  const start = lines.find((line) => /^npm (run )?start\b/.test(line));
  if (!install || !start) throw new Error(`README's sh block names no install or start command: ${lines.join(" | ")}`);
  return { install: shellCommands(install), start };
}
