import { spawn, spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { FAST, waitFor } from "../support/fleet.js";
import { ROOT, execForm, read, readCompose, readDockerfile } from "./files.js";

/**
 * The container's process tree, without a container engine: `npm start` (the image's CMD) in a
 * copy of the package whose build step is already done, so the checkout's dist/ is not rebuilt
 * under other test files. `docker stop` sends SIGTERM to npm; the daemon must get it and stop cleanly.
 */
function packageWithoutBuild(): string {
  if (!existsSync(path.join(ROOT, "dist/workers/main.js"))) throw new Error("dist/ is missing: run npm run build first (npm test does)");
  const dir = mkdtempSync(path.join(tmpdir(), "qrfleet-start-"));
  const pkg = JSON.parse(read("package.json"));
  pkg.scripts = { build: "true", start: pkg.scripts.start };
  writeFileSync(path.join(dir, "package.json"), JSON.stringify(pkg));
  // dist/ is copied: the entry point runs only when started under its own path, not a link's.
  cpSync(path.join(ROOT, "dist"), path.join(dir, "dist"), { recursive: true });
  for (const entry of ["node_modules", "prisma"]) symlinkSync(path.join(ROOT, entry), path.join(dir, entry));
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
  const dir = packageWithoutBuild();
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

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
