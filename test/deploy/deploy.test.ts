import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.js";
import {
  ROOT,
  dockerStages,
  envExampleSettings,
  execForm,
  importedPackages,
  interpolate,
  lockfileInstall,
  omitFlags,
  parseCopy,
  read,
  readCompose,
  readDockerfile,
  readmeCommands,
  serviceEnv,
  shellCommands,
} from "./files.js";

const DAEMONS = ["daemon-1", "daemon-2"];
const KEY = Buffer.alloc(32, 9).toString("base64");
/** What a user puts in the .env next to compose.yaml: the values it marks required. */
const USER_ENV: Record<string, string> = {
  POSTGRES_PASSWORD: "3f1c0d9e8b7a6c5d4e3f2a1b0c9d8e7f",
  QRFLEET_SECRET_KEY: KEY,
  QRFLEET_ADMIN_TOKEN: "admin-token-0123456789abcdef",
  QRFLEET_PUBLIC_URL: "https://qr.example.com",
  SMTP_URL: "smtp://mailer:pw@mail.example.com:587",
};
const SECRETS = ["QRFLEET_SECRET_KEY", "QRFLEET_ADMIN_TOKEN", "QRFLEET_SECRET_KEYS_PREVIOUS", "GREENAPI_PARTNER_TOKEN", "SMTP_URL", "POSTGRES_PASSWORD"];

/** The settings src/config.ts refuses to start without, as its error names them. */
function requiredSettings(): string[] {
  try {
    loadConfig({});
  } catch (err) {
    return [...String((err as Error).message).matchAll(/set ([A-Z0-9_]+) to/g)].map((m) => m[1]!);
  }
  throw new Error("loadConfig({}) started without any setting");
}

describe("deploy/compose.yaml", () => {
  const compose = readCompose();
  const { services } = compose;

  it("runs PostgreSQL of a pinned major, Redis and two daemons built from the Dockerfile, each restarted", () => {
    expect(Object.keys(services).sort()).toEqual(["daemon-1", "daemon-2", "postgres", "redis"]);
    expect(services.postgres!.image).toMatch(/^postgres:\d+(\.\d+)?$/);
    expect(services.redis!.image).toMatch(/^redis:\d+(\.\d+)?$/);
    for (const name of DAEMONS) {
      const build = services[name]!.build!;
      expect(existsSync(path.resolve(ROOT, "deploy", build.context, build.dockerfile)), `${name} builds ${build.dockerfile}`).toBe(true);
      expect(services[name]!.depends_on).toEqual({ postgres: { condition: "service_healthy" }, redis: { condition: "service_healthy" } });
    }
    for (const [name, service] of Object.entries(services)) expect(service.restart, name).toBe("unless-stopped");
  });

  it("keeps PostgreSQL's and Redis's data on named volumes", () => {
    expect(services.postgres!.volumes).toEqual(["postgres-data:/var/lib/postgresql/data"]);
    expect(services.redis!.volumes).toEqual(["redis-data:/data"]);
    expect(Object.keys(compose.volumes).sort()).toEqual(["postgres-data", "redis-data"]);
  });

  it("runs Redis with noeviction (BullMQ's keys are never evicted) and the append-only file on", () => {
    const args = services.redis!.command!.join(" ");
    expect(args).toMatch(/--maxmemory-policy noeviction\b/);
    expect(args).toMatch(/--appendonly yes\b/);
  });

  it("gives every service a healthcheck, the daemons their readiness", () => {
    for (const [name, service] of Object.entries(services)) expect(service.healthcheck?.test[0], name).toBe("CMD");
    for (const name of DAEMONS) expect(services[name]!.healthcheck!.test.join(" ")).toContain("/readyz");
  });

  it("sets only settings .env.example documents, under their own names", () => {
    const documented = envExampleSettings();
    for (const name of DAEMONS) {
      const unknown = Object.keys(services[name]!.environment!).filter((k) => !documented.has(k));
      expect(unknown, `${name} sets settings qrfleet does not have`).toEqual([]);
    }
  });

  it("asks for every setting src/config.ts requires, with a sentence, and starts a valid config once they are given", () => {
    const required = requiredSettings();
    expect(required.sort()).toEqual(["QRFLEET_ADMIN_TOKEN", "QRFLEET_SECRET_KEY"]);
    for (const name of DAEMONS) {
      const env = services[name]!.environment!;
      for (const key of required) expect(String(env[key]), `${name} ${key}`).toMatch(new RegExp(`^\\$\\{${key}:\\?.{10,}\\}$`));
      for (const key of required) {
        const { [key]: _omitted, ...without } = USER_ENV;
        expect(() => serviceEnv(services[name]!, without)).toThrow(new RegExp(`${key}.*set ${key}`));
      }
      const config = loadConfig(serviceEnv(services[name]!, USER_ENV));
      expect(config.QRFLEET_SECRET_KEY).toBe(KEY);
      expect(new URL(config.DATABASE_URL).host).toBe("postgres:5432");
      expect(new URL(config.REDIS_URL).host).toBe("redis:6379");
      expect(config.HOST).toBe("0.0.0.0");
      // Optional settings left out of .env fall back to the documented defaults.
      expect(config.QRFLEET_CONCURRENCY).toBe(Number(envExampleSettings().get("QRFLEET_CONCURRENCY")));
    }
  });

  it("holds no secret inline: every secret is a variable of the environment", () => {
    const all = Object.values(services).flatMap((s) => Object.entries(s.environment ?? {}));
    const secrets = all.filter(([k]) => SECRETS.includes(k));
    expect(secrets.length).toBeGreaterThanOrEqual(SECRETS.length);
    for (const [key, value] of secrets) expect(String(value), key).toMatch(new RegExp(`^\\$\\{${key}(:[-?][^}]*)?\\}$`));
    const url = String(services["daemon-1"]!.environment!.DATABASE_URL);
    expect(interpolate(url, USER_ENV)).toBe(`postgresql://qrfleet:${USER_ENV.POSTGRES_PASSWORD}@postgres:5432/qrfleet`);
    expect(url).not.toContain(USER_ENV.POSTGRES_PASSWORD);
  });

  it("publishes each daemon on its own host port, onto the port the image exposes", () => {
    const exposed = readDockerfile().find((i) => i.keyword === "EXPOSE")!.args;
    const mappings = DAEMONS.map((name) => services[name]!.ports![0]!);
    expect(new Set(mappings.map((p) => p.split(":").at(-2))).size).toBe(DAEMONS.length);
    for (const p of mappings) expect(p.split(":").at(-1)).toBe(exposed);
  });
});

describe("Dockerfile", () => {
  const instructions = readDockerfile();
  const all = (keyword: string) => instructions.filter((i) => i.keyword === keyword).map((i) => i.args);

  it("is a multi-stage build on Node 20 slim, the major package.json asks for", () => {
    const froms = all("FROM");
    expect(froms.length).toBeGreaterThanOrEqual(2);
    for (const from of froms) expect(from).toMatch(/^node:20-slim\b/);
    expect(JSON.parse(read("package.json")).engines.node).toMatch(/^>=20\./);
  });

  const stages = dockerStages();
  const runtime = stages.at(-1)!;
  const stage = (name: string | null) => stages.find((s) => s.name === name);
  const runsOf = (s: { instructions: { keyword: string; args: string }[] }) =>
    s.instructions.filter((i) => i.keyword === "RUN").flatMap((i) => shellCommands(i.args));
  const runtimeCopies = runtime.instructions.filter((i) => i.keyword === "COPY").map((i) => parseCopy(i.args));
  const copiedFrom = (source: RegExp, what: string) => {
    const from = runtimeCopies.find((c) => c.sources.some((s) => source.test(s)))?.from;
    const found = from ? stage(from) : undefined;
    if (!found) throw new Error(`the runtime stage copies ${what} from no stage of the Dockerfile`);
    return found;
  };
  /** The stage the runtime takes dist/ from: the one that builds. */
  const buildStage = () => copiedFrom(/^\/app\/dist\//, "dist/");
  /** The stage the runtime takes node_modules from, and the npm command that filled it. */
  const depsStage = () => copiedFrom(/^\/app\/node_modules$/, "node_modules");
  const productionInstall = () => runsOf(depsStage()).find((c) => /^npm (ci|prune)\b/.test(c) && omitFlags(c).has("dev"));

  it("installs and builds with exactly README's commands, and starts with README's start command", () => {
    const readme = readmeCommands();
    expect(runsOf(buildStage())).toEqual(readme.install);
    expect(all("CMD").map((c) => execForm(c).join(" "))).toEqual([readme.start]);
  });

  it("builds only in the build stage: npm start and the runtime stage compile and generate nothing", () => {
    const start = JSON.parse(read("package.json")).scripts.start as string;
    const builds = /\bnpm run build\b|\btsc\b|\bprisma generate\b|\bnpm run generate\b/;
    // Its commands, not the words of its message, name no build step.
    expect(start.replace(/"[^"]*"/g, '""')).not.toMatch(builds);
    expect(start).toMatch(/\bexec node (--\S+ )*dist\/workers\/main\.js$/);
    // Without a build, a sentence saying what to run, not node's stack trace (start.test.ts runs it).
    expect(start).toMatch(/^test -f dist\/workers\/main\.js \|\| \{ echo "[^"]*npm run build[^"]*" >&2; exit 1; \}; exec node /);
    expect(runtime.instructions.filter((i) => i.keyword === "RUN")).toEqual([]);
    for (const i of runtime.instructions) expect(`${i.keyword} ${i.args}`).not.toMatch(builds);
    // Nothing comes from the build context or the build stage's whole tree (sources, dev dependencies).
    for (const copy of runtimeCopies) {
      expect(copy.from, `COPY ${copy.sources.join(" ")}`).not.toBeNull();
      for (const source of copy.sources) expect(source).not.toMatch(/^(\/app\/?|\.\/?|\.)$/);
    }
  });

  it("carries only production dependencies, from an install that left the dev dependencies out", () => {
    const install = productionInstall();
    expect(install, `the stage runtime's node_modules comes from runs ${runsOf(depsStage()).join(" && ")}`).toBeDefined();
    expect(depsStage()).not.toBe(buildStage());
    const node_modules = runtimeCopies.filter((c) => c.sources.some((s) => /node_modules/.test(s)));
    expect(node_modules.map((c) => c.from)).toEqual([depsStage().name]);
    const installed = lockfileInstall(omitFlags(install!));
    // What production does not need: the lockfile marks it dev, or devOptional (the compiler and the
    // Prisma CLI are optional peers of @prisma/client as well, and npm keeps those under --omit=dev
    // alone). A devDependency that a dependency needs too (@prisma/driver-adapter-utils) is neither.
    const lock = JSON.parse(read("package-lock.json")) as { packages: Record<string, { dev?: boolean; devOptional?: boolean }> };
    const devOnly = Object.keys(lock.packages).filter((key) => lock.packages[key]!.dev || lock.packages[key]!.devOptional);
    for (const name of ["typescript", "prisma", "@prisma/engines", "tsx", "vitest"]) expect(devOnly).toContain(`node_modules/${name}`);
    expect(devOnly.filter((key) => installed.has(key))).toEqual([]);
  });

  it("installs, as production dependencies, every package the built daemon imports", () => {
    if (!existsSync(path.join(ROOT, "dist/workers/main.js"))) throw new Error("dist/ is missing: run npm run build first (npm test does)");
    const dist = runtimeCopies.filter((c) => c.from === buildStage().name).flatMap((c) => c.sources).filter((s) => s.startsWith("/app/dist/"));
    const imported = importedPackages(dist.map((s) => s.slice("/app/".length)));
    expect(imported.has("@prisma/client")).toBe(true);
    const { dependencies } = JSON.parse(read("package.json")) as { dependencies: Record<string, string> };
    const installed = lockfileInstall(omitFlags(productionInstall()!));
    for (const name of imported) {
      expect(dependencies[name], `${name} is imported by ${dist.join(", ")}: a dependency, not a devDependency`).toBeDefined();
      expect(installed.has(`node_modules/${name}`), name).toBe(true);
    }
  });

  it("copies into the runtime stage the build output, package.json and the migrations, owned by root", () => {
    const copied = runtimeCopies.flatMap((c) => c.sources.map((s) => `${c.from}:${s}`)).sort();
    const build = buildStage().name;
    expect(copied).toEqual(
      [`${depsStage().name}:/app/node_modules`, `${build}:/app/package.json`, `${build}:/app/prisma/migrations`, `${build}:/app/dist/src`, `${build}:/app/dist/workers`].sort(),
    );
    // Nothing is regenerated at start, so nothing needs to be writable by the user that runs it.
    for (const copy of runtimeCopies) expect(copy.chown, `COPY ${copy.sources.join(" ")}`).toBeNull();
    expect(readFileSync(path.join(ROOT, "src/paths.ts"), "utf8")).toMatch(/MIGRATIONS_DIR = path\.join\(PROJECT_ROOT, "prisma", "migrations"\)/);
  });

  it("runs as an unprivileged user, in production mode, exposing the configured HTTP port with a healthcheck", () => {
    const users = all("USER");
    expect(users.at(-1)).toMatch(/^(?!root$|0$)\S+$/);
    expect(all("ENV").join(" ")).toMatch(/\bNODE_ENV=production\b/);
    const { PORT } = loadConfig({ QRFLEET_SECRET_KEY: KEY, QRFLEET_ADMIN_TOKEN: USER_ENV.QRFLEET_ADMIN_TOKEN });
    expect(all("EXPOSE")).toEqual([String(PORT)]);
    expect(all("HEALTHCHECK").join(" ")).toContain("/healthz");
  });

  it("leaves local secrets and host build output out of the image", () => {
    const ignored = read(".dockerignore").split("\n").map((l) => l.trim());
    for (const entry of [".env", "node_modules", "dist", "src/generated", ".git"]) expect(ignored).toContain(entry);
  });
});
