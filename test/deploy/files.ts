import { readFileSync, readdirSync } from "node:fs";
import { builtinModules } from "node:module";
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

export interface Stage {
  /** `AS name`, if the stage has one. */
  name: string | null;
  instructions: Instruction[];
}

/** The Dockerfile's stages in order, each with the instructions after its FROM; the last is the image. */
export function dockerStages(): Stage[] {
  const stages: Stage[] = [];
  for (const instruction of readDockerfile()) {
    if (instruction.keyword === "FROM") {
      stages.push({ name: /\bAS\s+(\S+)$/i.exec(instruction.args)?.[1] ?? null, instructions: [] });
    } else {
      if (!stages.length) throw new Error(`Dockerfile: ${instruction.keyword} before the first FROM`);
      stages.at(-1)!.instructions.push(instruction);
    }
  }
  return stages;
}

export interface Copy {
  /** `--from=stage`, or null for the build context. */
  from: string | null;
  chown: string | null;
  sources: string[];
  dest: string;
}

/** A COPY's flags, sources and destination (shell form). */
export function parseCopy(args: string): Copy {
  const words = args.split(/\s+/);
  const flags = words.filter((w) => w.startsWith("--"));
  const paths = words.filter((w) => !w.startsWith("--"));
  const flag = (name: string) => flags.find((f) => f.startsWith(`--${name}=`))?.slice(name.length + 3) ?? null;
  return { from: flag("from"), chown: flag("chown"), sources: paths.slice(0, -1), dest: paths.at(-1)! };
}

/**
 * The packages (lockfile keys, `node_modules/…`) that `npm ci` with these `--omit` types installs
 * from package-lock.json, filtered as npm's reify filters them: `dev`, `optional` and `peer` by
 * their own flag, and `devOptional` (e.g. an optional peer that is also a devDependency) only when
 * both dev and optional are omitted.
 */
export function lockfileInstall(omit: ReadonlySet<string>): Set<string> {
  type Entry = { dev?: boolean; optional?: boolean; devOptional?: boolean; peer?: boolean };
  const lock = JSON.parse(read("package-lock.json")) as { packages: Record<string, Entry> };
  const omitted = (p: Entry) =>
    (p.dev && omit.has("dev")) ||
    (p.optional && omit.has("optional")) ||
    (p.devOptional && omit.has("dev") && omit.has("optional")) ||
    (p.peer && omit.has("peer"));
  return new Set(Object.entries(lock.packages).filter(([key, p]) => key !== "" && !omitted(p)).map(([key]) => key));
}

/** The `--omit=` types of an `npm ci`/`npm prune` command (`--omit=dev --omit=optional`). */
export const omitFlags = (command: string): Set<string> =>
  new Set([...command.matchAll(/--omit[= ](\S+)/g)].flatMap((m) => m[1]!.split(",")));

/**
 * The npm packages the JavaScript under `dirs` (relative to the root, e.g. dist/src) imports, as
 * `import … from "x"`, `export … from "x"`, `import "x"` and `import("x")` name them: a scope's
 * package is `@scope/name`, node's own modules are left out. tsc drops type-only imports, so this
 * is what the built code loads.
 */
export function importedPackages(dirs: string[]): Set<string> {
  const found = new Set<string>();
  const specifier = /(?:\bfrom\s*|^\s*import\s*|\bimport\s*\(\s*)["']([^"']+)["']/gm;
  for (const dir of dirs) {
    const files = readdirSync(path.join(ROOT, dir), { recursive: true, encoding: "utf8" }).filter((f) => f.endsWith(".js"));
    for (const file of files) {
      for (const [, spec] of read(path.join(dir, file)).matchAll(specifier)) {
        if (!/^(@[\w.-]+\/)?[\w.-]+(\/[\w.@/-]*)?$/.test(spec!) || spec!.startsWith(".") || spec!.startsWith("node:")) continue;
        const name = spec!.split("/").slice(0, spec!.startsWith("@") ? 2 : 1).join("/");
        if (!builtinModules.includes(name)) found.add(name);
      }
    }
  }
  return found;
}
