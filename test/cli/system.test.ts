import { describe, expect, it } from "vitest";
import type { MigrationResult } from "../../src/migrate.js";
import { emptyDatabase } from "../support/db.js";
import { cliRunner, noStack } from "./run.js";

const qrfleet = cliRunner();

describe("qrfleet migrate, simulator, daemon and usage", { timeout: 120_000 }, () => {
  it("migrate applies every migration to an empty database, then says it is up to date", async () => {
    const db = await emptyDatabase();
    try {
      const first = await qrfleet(["migrate"], { DATABASE_URL: db.url });
      expect(first.code).toBe(0);
      expect(first.stdout).toMatch(/^applied \d+ migrations?:\n {2}\d{14}_\w+/);
      const again = await qrfleet(["migrate", "--json"], { DATABASE_URL: db.url });
      const result = JSON.parse(again.stdout) as MigrationResult;
      expect(result.applied).toEqual([]);
      expect(result.alreadyApplied.length).toBeGreaterThan(0);
      const text = await qrfleet(["migrate"], { DATABASE_URL: db.url });
      expect(text.stdout).toMatch(/^the database is up to date/);
    } finally {
      await db.drop();
    }
  });

  it("migrate goes to MIGRATE_DATABASE_URL when it is set (the direct address behind a pooler)", async () => {
    const [pooled, direct] = [await emptyDatabase(), await emptyDatabase()];
    try {
      const r = await qrfleet(["migrate", "--json"], { DATABASE_URL: pooled.url, MIGRATE_DATABASE_URL: direct.url });
      expect(r.code).toBe(0);
      expect((JSON.parse(r.stdout) as MigrationResult).applied.length).toBeGreaterThan(0);
      const onPooled = await qrfleet(["migrate", "--json"], { DATABASE_URL: pooled.url });
      expect((JSON.parse(onPooled.stdout) as MigrationResult).alreadyApplied).toEqual([]);
      const bad = await qrfleet(["migrate"], { MIGRATE_DATABASE_URL: "mysql://db/qrfleet" });
      expect(bad.code).toBe(2);
      expect(bad.stderr).toContain("MIGRATE_DATABASE_URL");
    } finally {
      await Promise.all([pooled.drop(), direct.drop()]);
    }
  });

  it("simulator prints its instances and stops on Ctrl-C (exit 0)", async () => {
    const run = qrfleet.start(["simulator", "--port", "0", "--instances", "2", "--id-prefix", "4242", "--json"]);
    const deadline = Date.now() + 30_000;
    while (!/\n}\n/.test(run.output()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    run.signal("SIGINT");
    const r = await run.result;
    expect(r.code).toBe(0);
    const printed = JSON.parse(r.stdout) as { url: string; instances: Array<{ idInstance: string }> };
    expect(printed.instances.map((i) => i.idInstance)).toEqual(["4242000001", "4242000002"]);
  });

  it("daemon refuses to start without its configuration (exit 2)", async () => {
    const r = await qrfleet(["daemon"], { QRFLEET_ADMIN_TOKEN: "" });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("set QRFLEET_ADMIN_TOKEN");
  });

  it("documents exit codes and treats an unknown command or option as usage (exit 2)", async () => {
    const [help, unknown, badOption, bare] = await Promise.all([
      qrfleet(["--help"]),
      qrfleet(["frobnicate"]),
      qrfleet(["instance", "list", "--colour"]),
      qrfleet([]),
    ]);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain("Exit codes: 0 done; 1 failed");
    expect(unknown).toMatchObject({ code: 2, stderr: expect.stringContaining("unknown command 'frobnicate'") });
    expect(badOption).toMatchObject({ code: 2, stderr: expect.stringContaining("unknown option '--colour'") });
    expect(bare.code).toBe(2);
    for (const r of [unknown, badOption]) expect(noStack(r.stderr)).toBe(true);
  });
});
