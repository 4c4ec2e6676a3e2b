import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../../src/config.js";
import { addInstance } from "../../src/fleet/instances/instances.js";
import type { RotationReport } from "../../src/fleet/upkeep/key-rotation.js";
import { addOperator } from "../../src/fleet/operators/operators.js";
import { SecretBox } from "../../src/secrets.js";
import { cliRunner, noStack } from "../cli/run.js";
import { newIdInstance, newToken, testFleet } from "../support/fleet.js";

const qrfleet = cliRunner();
const OLD = randomBytes(32).toString("base64");
const NEW = randomBytes(32).toString("base64");
const RING = { QRFLEET_SECRET_KEY: NEW, QRFLEET_SECRET_KEYS_PREVIOUS: OLD };
const good = { QRFLEET_SECRET_KEY: NEW, QRFLEET_ADMIN_TOKEN: "0123456789abcdef0" };

let before: ReturnType<typeof testFleet>;
beforeAll(() => {
  before = testFleet({ QRFLEET_SECRET_KEY: OLD });
});
afterAll(() => before?.close());

describe("the keyring in configuration", () => {
  it("accepts previous keys, comma-separated, and refuses what is not a key with a sentence naming the entry, never its value", () => {
    const other = randomBytes(32).toString("base64");
    expect(loadConfig({ ...good, QRFLEET_SECRET_KEYS_PREVIOUS: ` ${OLD}, ${other} ` }).QRFLEET_SECRET_KEYS_PREVIOUS).toEqual([OLD, other]);
    expect(loadConfig({ ...good }).QRFLEET_SECRET_KEYS_PREVIOUS).toEqual([]);

    const garbage = "not-a-key-at-all-but-secret";
    const refusals: Array<[string, RegExp]> = [
      [`${OLD},${garbage}`, /QRFLEET_SECRET_KEYS_PREVIOUS entry 2 of 2 is not 32 random bytes in base64: list the keys QRFLEET_SECRET_KEY replaced, comma-separated/],
      [Buffer.alloc(16, 1).toString("base64"), /entry 1 of 1 is not 32 random bytes in base64/],
      [`${"*".repeat(4)}${OLD}`, /entry 1 of 1 is not 32 random bytes/],
      [NEW, /QRFLEET_SECRET_KEYS_PREVIOUS entry 1 is the current QRFLEET_SECRET_KEY/],
      [`${OLD},${OLD}`, /entry 2 is a key listed before it/],
    ];
    for (const [value, message] of refusals) {
      let caught: unknown;
      try {
        loadConfig({ ...good, QRFLEET_SECRET_KEYS_PREVIOUS: value });
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(ConfigError);
      expect(String(caught)).toMatch(message);
      for (const secret of [garbage, OLD, NEW]) expect(String(caught)).not.toContain(secret);
    }
  });

  it("stops a command at boot with one line saying what to set, and exit code 2", async () => {
    const r = await qrfleet(["rotate-key"], { QRFLEET_SECRET_KEY: NEW, QRFLEET_SECRET_KEYS_PREVIOUS: "garbage!" });
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toMatch(/^qrfleet: invalid configuration: QRFLEET_SECRET_KEYS_PREVIOUS entry 1 of 1 is not 32 random bytes in base64/);
    expect(noStack(r.stderr)).toBe(true);
  });
});

describe("qrfleet rotate-key", { timeout: 60_000 }, () => {
  it("--check counts what is under an old key; the rotation prints progress and counts; then --check passes", async () => {
    const tokens = [newToken(), newToken()];
    for (const token of tokens) await addInstance(before, { apiUrl: "https://7103.api.greenapi.com", idInstance: newIdInstance(), token });
    const { webhookSecret } = await addOperator(before, { name: "rotating-ops", webhook: "https://hooks.example.test/qr" });

    const [check, dry] = await Promise.all([qrfleet(["rotate-key", "--check", "--json"], RING), qrfleet(["rotate-key", "--dry-run"], RING)]);
    expect(check.code).toBe(1);
    const counted = JSON.parse(check.stdout) as RotationReport;
    expect(counted.checkOnly).toBe(true);
    expect(counted.kinds.map((k) => [k.kind, k.underOldKey, k.reEncrypted])).toEqual([
      ["instance_token", 2, 0], ["instance_webhook_token", 0, 0], ["channel_secret", 1, 0],
    ]);
    expect(dry.stdout).toContain("instance tokens: 2 under an old key, 0 current, 0 unreadable");

    const run = await qrfleet(["rotate-key", "--batch-size", "1"], RING);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain(`re-encrypted under the current key (id ${new SecretBox(NEW).currentKeyId})`);
    expect(run.stdout).toContain("instance tokens: 2 re-encrypted, 0 already current, 0 unreadable");
    expect(run.stdout).toContain("channel webhook secrets: 1 re-encrypted, 0 already current, 0 unreadable");
    expect(run.stderr).toContain("qrfleet: instance tokens: 1 read, 1 re-encrypted");
    expect(run.stderr).toContain("qrfleet: instance tokens: 2 read, 2 re-encrypted");

    const done = await qrfleet(["rotate-key", "--check"], RING);
    expect(done.code).toBe(0);
    expect(done.stdout).toContain("every value is under the current key: QRFLEET_SECRET_KEYS_PREVIOUS can be emptied");
    for (const out of [check, dry, run, done]) {
      for (const secret of [...tokens, webhookSecret!, NEW, OLD]) expect(out.stdout + out.stderr).not.toContain(secret);
    }
  });

  it("exits 1 and names the instance whose token no configured key opens", async () => {
    const token = newToken();
    const stray = testFleet({ QRFLEET_SECRET_KEY: randomBytes(32).toString("base64") });
    let id: string;
    try {
      ({ id } = await addInstance(stray, { apiUrl: "https://7103.api.greenapi.com", idInstance: newIdInstance(), token }));
    } finally {
      await stray.close();
    }
    const r = await qrfleet(["rotate-key"], RING);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(`unreadable: instance token of instance ${id} opens under none of the configured keys`);
    expect(r.stdout + r.stderr).not.toContain(token);
  });
});
