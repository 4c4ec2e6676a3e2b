import { existsSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.js";
import {
  ROOT,
  envExampleSettings,
  execForm,
  interpolate,
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

  it("installs and starts with exactly README's commands", () => {
    const readme = readmeCommands();
    const runs = all("RUN").flatMap(shellCommands);
    expect(runs).toEqual(readme.install);
    expect(all("CMD").map((c) => execForm(c).join(" "))).toEqual([readme.start]);
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
