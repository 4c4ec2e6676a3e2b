import { randomInt } from "node:crypto";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import type { InstanceView } from "../../src/fleet/instances/instances.js";
import { SecretBox } from "../../src/secrets.js";
import { testDb } from "../support/db.js";
import { newIdInstance, newToken } from "../support/fleet.js";
import { cliRunner, noStack } from "./run.js";

const qrfleet = cliRunner();
const API = "https://7103.api.greenapi.com";

/** `n` instances of consecutive idInstance values, so a test can count exactly its own. */
function fleetRows(n: number): Array<{ id: string; token: string }> {
  const base = randomInt(1_000_000_000, 9_000_000_000);
  return Array.from({ length: n }, (_, i) => ({ id: String(base + i), token: newToken() }));
}

const csvOf = (rows: Array<{ id: string; token: string }>) => ["apiUrl,idInstance,token", ...rows.map((r) => `${API},${r.id},${r.token}`)].join("\n");

async function tempFile(name: string, text: string): Promise<string> {
  const file = path.join(await mkdtemp(path.join(tmpdir(), "qrfleet-cli-")), name);
  await writeFile(file, text);
  return file;
}

describe("qrfleet instance", { timeout: 120_000 }, () => {
  it("refuses a label with control characters, and shows one stored earlier as escapes, never raw", async () => {
    const id = newIdInstance();
    const refused = await qrfleet(["instance", "add", "--api-url", API, "--id", id, "--token", newToken(), "--label", "\u001b[2Jpwned"]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain("label: must not contain control or invisible formatting characters");
    const bidi = await qrfleet(["instance", "add", "--api-url", API, "--id", id, "--token", newToken(), "--label", "Shop\u202Egnp.exe"]);
    expect(bidi.code).toBe(1);
    expect(bidi.stderr).toContain("label: must not contain control or invisible formatting characters");
    const added = await qrfleet.json<InstanceView>(["instance", "add", "--api-url", API, "--id", id, "--token", newToken(), "--label", "desk"]);
    const db = testDb();
    try {
      await db.instance.update({ where: { id: added.id }, data: { label: "\u001b[2J\u001b]0;owned\u0007desk" } });
    } finally {
      await db.$disconnect();
    }
    const [shown, listed] = await Promise.all([qrfleet(["instance", "show", id]), qrfleet(["instance", "list"])]);
    for (const out of [shown.stdout, listed.stdout]) {
      expect(out).toContain("\\x1b[2J\\x1b]0;owned\\x07desk");
      expect(out).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f]/);
    }
  });

  it("adds, lists, shows, updates and removes an instance, by idInstance, with --json", async () => {
    const id = newIdInstance();
    const token = newToken();
    const added = await qrfleet.json<InstanceView>(["instance", "add", "--api-url", API, "--id", id, "--token", token, "--label", "kitchen"]);
    expect(added).toMatchObject({ idInstance: id, apiUrl: API, label: "kitchen", enabled: true });
    expect(JSON.stringify(added)).not.toContain(token);

    const list = await qrfleet.json<InstanceView[]>(["instance", "list"]);
    expect(list.find((i) => i.idInstance === id)).toMatchObject({ id: added.id, label: "kitchen" });
    const table = await qrfleet(["instance", "list"]);
    expect(table.stdout).toMatch(/id\s+idInstance\s+label\s+state\s+last outcome\s+unlinked since/);
    expect(table.stdout).toContain(id);

    const shown = await qrfleet.json<InstanceView>(["instance", "show", id]);
    expect(shown).toMatchObject({ id: added.id, createdAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/) });

    const updated = await qrfleet.json<InstanceView>(["instance", "update", id, "--label", "", "--disable", "--phone", "+7 900 555 00 01", "--max-attempts", "2"]);
    expect(updated).toMatchObject({ label: null, enabled: false, expectedPhone: "79005550001", maxAttempts: 2 });

    const removed = await qrfleet(["instance", "remove", id]);
    expect(removed.code).toBe(0);
    expect(removed.stdout).toContain(`removed instance ${id}`);
    const gone = await qrfleet(["instance", "show", id]);
    expect(gone.code).toBe(1);
    expect(gone.stderr.trim()).toBe(`qrfleet: no instance "${id}"`);
  });

  it("refuses bad input with one clear line and no stack: exit 1 for invalid data, 2 for usage", async () => {
    const token = newToken();
    const [invalid, missing, notNumber, nothing, config] = await Promise.all([
      qrfleet(["instance", "add", "--api-url", "not a url", "--id", newIdInstance(), "--token", token]),
      qrfleet(["instance", "add", "--api-url", API, "--id", newIdInstance()]),
      qrfleet(["instance", "add", "--api-url", API, "--id", newIdInstance(), "--token", token, "--max-attempts", "many"]),
      qrfleet(["instance", "update", newIdInstance()]),
      qrfleet(["instance", "list"], { QRFLEET_SECRET_KEY: "too-short" }),
    ]);
    expect(invalid.code).toBe(1);
    expect(invalid.stderr).toMatch(/^qrfleet: .*is not a URL/);
    expect(invalid.stderr.trim().split("\n")).toHaveLength(1);
    expect(invalid.stdout).toBe("");
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("required option '--token <token>' not specified");
    expect(notNumber.code).toBe(2);
    expect(notNumber.stderr).toContain("must be a whole number");
    expect(nothing.code).toBe(2);
    expect(nothing.stderr).toContain("nothing to update");
    expect(config.code).toBe(2);
    expect(config.stderr).toMatch(/^qrfleet: invalid configuration: QRFLEET_SECRET_KEY must be 32 random bytes/);

    for (const r of [invalid, missing, notNumber, nothing, config]) expect(noStack(r.stderr)).toBe(true);
    expect(invalid.stderr + missing.stderr + notNumber.stderr).not.toContain(token);
  });

  it("reads a token given as - from standard input, so it never shows in ps", async () => {
    const id = newIdInstance();
    const token = newToken();
    const added = await qrfleet(["instance", "add", "--api-url", API, "--id", id, "--token", "-", "--json"], {}, `${token}\n`);
    expect(added.code).toBe(0);
    expect(added.stdout + added.stderr).not.toContain(token);
    const db = testDb();
    try {
      const row = await db.instance.findFirstOrThrow({ where: { idInstance: id } });
      expect(new SecretBox(process.env.QRFLEET_SECRET_KEY!).open(row.tokenCiphertext)).toBe(token);
    } finally {
      await db.$disconnect();
    }
  });

  it("reports a missing instance as a JSON error line with --json", async () => {
    const r = await qrfleet(["instance", "show", "4242424242", "--json"]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe("");
    expect(JSON.parse(r.stderr)).toEqual({ error: { code: "not_found", message: 'no instance "4242424242"' } });
  });

  it("adds a duplicate as a conflict (exit 1)", async () => {
    const args = ["instance", "add", "--api-url", API, "--id", newIdInstance(), "--token", newToken()];
    expect((await qrfleet(args)).code).toBe(0);
    const again = await qrfleet(args);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/^qrfleet: instance \d+ at .* already exists\n$/);
  });
});

describe("qrfleet instance import", { timeout: 120_000 }, () => {
  it("imports nothing when one CSV row is bad, and says which row and why", async () => {
    const [a, b] = [newIdInstance(), newIdInstance()];
    const csv = ["apiUrl,idInstance,token,label", `${API},${a},${newToken()},first`, `${API},12ab,${newToken()},bad`, `${API},${b},${newToken()},third`].join("\n");
    const r = await qrfleet(["instance", "import", await tempFile("fleet.csv", csv)]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("1 of 3 rows are invalid; nothing was imported");
    expect(r.stderr).toMatch(/row 2: idInstance.*must be 4 to 20 digits/);
    expect(noStack(r.stderr)).toBe(true);
    const ids = (await qrfleet.json<InstanceView[]>(["instance", "list"])).map((i) => i.idInstance);
    expect(ids).not.toContain(a);
    expect(ids).not.toContain(b);
  });

  it("imports a whole CSV or JSON file", async () => {
    const [a, b, c] = [newIdInstance(), newIdInstance(), newIdInstance()];
    const csv = ["apiUrl,idInstance,token,maxAttempts", `${API},${a},${newToken()},3`, `${API},${b},${newToken()},`].join("\n");
    const fromCsv = await qrfleet(["instance", "import", await tempFile("fleet.csv", csv)]);
    expect(fromCsv.stdout.trim()).toBe("imported 2 instances");
    const json = JSON.stringify([{ apiUrl: API, idInstance: c, token: newToken(), label: "from json" }]);
    const fromJson = await qrfleet.json<{ created: number; ids: string[] }>(["instance", "import", await tempFile("fleet.json", json)]);
    expect(fromJson.created).toBe(1);
    expect((await qrfleet.json<InstanceView>(["instance", "show", a])).maxAttempts).toBe(3);
    expect((await qrfleet.json<InstanceView>(["instance", "show", c])).label).toBe("from json");
  });

  it("imports a file of thousands of rows whole, every token sealed", async () => {
    const rows = fleetRows(5_000);
    const r = await qrfleet.json<{ created: number; ids: string[] }>(["instance", "import", await tempFile("fleet.csv", csvOf(rows))]);
    expect(r.created).toBe(5_000);
    expect(new Set(r.ids).size).toBe(5_000);
    const db = testDb();
    try {
      expect(await db.instance.count({ where: { idInstance: { in: rows.map((row) => row.id) } } })).toBe(5_000);
      const last = await db.instance.findFirstOrThrow({ where: { idInstance: rows.at(-1)!.id } });
      expect(last.id).toBe(r.ids.at(-1));
      expect(new SecretBox(process.env.QRFLEET_SECRET_KEY!).open(last.tokenCiphertext)).toBe(rows.at(-1)!.token);
    } finally {
      await db.$disconnect();
    }
  });

  it("imports nothing when one row deep in a large file is bad, and names that row", async () => {
    const rows = fleetRows(5_000);
    rows[4_320]!.token = "short";
    const r = await qrfleet(["instance", "import", await tempFile("fleet.csv", csvOf(rows))]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("qrfleet: 1 of 5000 rows are invalid; nothing was imported\n  row 4321: token: token must be 8 to 200 letters, digits, - or _ (the instance's apiTokenInstance)\n");
    expect(r.stderr.match(/^ {2}row /gm)).toHaveLength(1);
    const db = testDb();
    try {
      expect(await db.instance.count({ where: { idInstance: { in: rows.map((row) => row.id) } } })).toBe(0);
    } finally {
      await db.$disconnect();
    }
  });

  it("lists the first 100 bad rows and counts them all", async () => {
    const rows = fleetRows(3_000);
    rows.forEach((row, i) => {
      if (i % 10 === 9) row.id = "not-digits";
    });
    rows.push({ ...rows[0]! });
    const r = await qrfleet(["instance", "import", await tempFile("fleet.csv", csvOf(rows)), "--json"]);
    expect(r.code).toBe(1);
    const { error } = JSON.parse(r.stderr) as { error: { message: string; rows: Array<{ row: number; message: string }> } };
    expect(error.message).toBe("301 of 3001 rows are invalid; nothing was imported (the first 100 are listed)");
    expect(error.rows).toHaveLength(100);
    expect(error.rows.map((e) => e.row)).toEqual(Array.from({ length: 100 }, (_, i) => 10 * (i + 1)));
  });

  it("says so when the file cannot be read (exit 2)", async () => {
    const r = await qrfleet(["instance", "import", "/nonexistent/fleet.csv"]);
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toBe("qrfleet: cannot read /nonexistent/fleet.csv: no such file");
  });
});
