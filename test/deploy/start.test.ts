import { spawn, spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { FAST, waitFor } from "../support/fleet.js";
import { ROOT, dockerStages, execForm, parseCopy, readCompose, readDockerfile } from "./files.js";

/**
 * The container's process tree, without a container engine: `npm start` (the image's CMD) in a
 * directory holding what the Dockerfile's runtime stage copies, taken from this checkout's build:
 * package.json as it is, dist/ and the migrations copied, node_modules linked (which packages the
 * image installs is deploy.test.ts's business). `docker stop` sends SIGTERM to npm; the daemon must
 * get it and stop cleanly.
 */
function runtimeImage(): string {
  if (!existsSync(path.join(ROOT, "dist/workers/main.js"))) throw new Error("dist/ is missing: run npm run build first (npm test does)");
  const dir = mkdtempSync(path.join(tmpdir(), "qrfleet-start-"));
  const copies = dockerStages().at(-1)!.instructions.filter((i) => i.keyword === "COPY").map((i) => parseCopy(i.args));
  for (const copy of copies) {
    for (const source of copy.sources) {
      // Every stage works in /app, the checkout's root here.
      const from = path.join(ROOT, path.relative("/app", source));
      const to = copy.dest.endsWith("/") ? path.join(dir, copy.dest, path.basename(source)) : path.join(dir, copy.dest);
      mkdirSync(path.dirname(to), { recursive: true });
      // dist/ is copied: the entry point runs only when started under its own path, not a link's.
      if (path.basename(source) === "node_modules") symlinkSync(from, to);
      else cpSync(from, to, { recursive: true });
    }
  }
  return dir;
}

/** Runs a healthcheck's `CMD node -e …` as Docker would, against the daemon's port. */
function healthcheckPasses(test: string[], port: number): boolean {
  const [cmd, ...args] = test[0] === "CMD" ? test.slice(1) : test;
  return spawnSync(cmd!, args, { env: { ...process.env, PORT: String(port) }, timeout: 10_000 }).status === 0;
}

const dockerHealthcheck = () => {
  const args = readDockerfile().find((i) => i.keyword === "HEALTHCHECK")!.args;
  return execForm(args.slice(args.indexOf("CMD ") + 4));
};

describe("npm start, as the image runs it", () => {
  const dir = runtimeImage();
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("is given only the build's output: no sources, schema or build tools", () => {
    expect(existsSync(path.join(dir, "dist/workers/main.js"))).toBe(true);
    expect(existsSync(path.join(dir, "prisma/migrations"))).toBe(true);
    for (const absent of ["src", "tsconfig.json", "prisma/schema.prisma", "prisma.config.ts"]) expect(existsSync(path.join(dir, absent)), absent).toBe(false);
  });

  it("passes both healthchecks once up, and stops the daemon cleanly on SIGTERM to npm", async () => {
    const npm = spawn("npm", execForm(readDockerfile().find((i) => i.keyword === "CMD")!.args).slice(1), {
      cwd: dir,
      env: { ...process.env, ...FAST, LOG_LEVEL: "info", PORT: "0", NPM_CONFIG_UPDATE_NOTIFIER: "false" },
      stdio: ["ignore", "pipe", "pipe"],
      // Its own process group, so a daemon orphaned by a failing start script is killed with it.
      detached: true,
    });
    const lines: string[] = [];
    npm.stdout.on("data", (c: Buffer) => lines.push(...c.toString().split("\n")));
    npm.stderr.on("data", (c: Buffer) => lines.push(...c.toString().split("\n")));
    const exited = new Promise<number | null>((resolve) => npm.on("exit", (code) => resolve(code)));
    try {
      const port = await waitFor("the daemon to listen", async () => {
        const m = lines.map((l) => /listening at http:\/\/[^:]+:(\d+)/.exec(l)).find(Boolean);
        return m ? Number(m[1]) : undefined;
      });
      const readiness = readCompose().services["daemon-1"]!.healthcheck!.test;
      await waitFor("the daemon to be ready", async () => healthcheckPasses(readiness, port));
      expect(healthcheckPasses(dockerHealthcheck(), port)).toBe(true);

      npm.kill("SIGTERM");
      expect(await exited).toBe(0);
      expect(lines.some((l) => l.includes('"msg":"qrfleet daemon stopped"'))).toBe(true);
      // Nothing is left listening: the daemon itself stopped, not just npm.
      expect(healthcheckPasses(dockerHealthcheck(), port)).toBe(false);
    } catch (err) {
      throw new Error(`${(err as Error).message}; npm start printed:\n${lines.filter(Boolean).slice(-15).join("\n")}`);
    } finally {
      try {
        process.kill(-npm.pid!, "SIGKILL");
      } catch {
        // Already gone: the group is empty.
      }
    }
  });
});

describe("npm start without a build", () => {
  const dir = mkdtempSync(path.join(tmpdir(), "qrfleet-nobuild-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("does not build, and says in one line to run npm run build first, without a stack trace", () => {
    cpSync(path.join(ROOT, "package.json"), path.join(dir, "package.json"));
    const npm = spawnSync("npm", ["start"], { cwd: dir, encoding: "utf8", timeout: 20_000, env: { ...process.env, NPM_CONFIG_UPDATE_NOTIFIER: "false" } });
    expect(npm.status).toBe(1);
    // npm's own lines (`npm error …`) aside, stderr is the script's one sentence.
    const said = npm.stderr.split("\n").filter((line) => line.trim() && !/^npm (error|ERR!|warn)/.test(line));
    expect(said).toHaveLength(1);
    expect(said[0]).toMatch(/run npm run build first/);
    expect(npm.stdout + npm.stderr).not.toMatch(/^\s+at |Error:|node:internal/m);
    expect(existsSync(path.join(dir, "dist"))).toBe(false);
  });
});
