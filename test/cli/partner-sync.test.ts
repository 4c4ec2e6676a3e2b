import { Writable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { describeSync, progressReporter } from "../../src/cli/partner-sync.js";
import type { SyncReport } from "../../src/fleet/partner/partner-sync.js";
import { startSimulator, type Simulator } from "../../src/simulator/index.js";
import { newIdInstance, newToken } from "../support/fleet.js";
import { cliRunner, noStack } from "./run.js";

const qrfleet = cliRunner();
const partnerToken = newToken();
const instances = Array.from({ length: 6 }, () => ({ idInstance: newIdInstance(), token: newToken() }));
let sim: Simulator;
let env: Record<string, string>;

beforeAll(async () => {
  sim = await startSimulator({ partnerToken, instances });
  env = { GREENAPI_PARTNER_TOKEN: partnerToken, GREENAPI_PARTNER_API_URL: sim.url, GREENAPI_INSTANCE_API_URL: sim.url };
});
afterAll(() => sim?.close());

const secrets = () => [partnerToken, ...instances.map((i) => i.token)];

describe("qrfleet instance sync", { timeout: 120_000 }, () => {
  it("syncs the partner account, says so, and says a second run had nothing to change", async () => {
    const first = await qrfleet(["instance", "sync"], env);
    expect(first.code).toBe(0);
    expect(first.stdout).toContain("partner account synced, 6 listed: 6 created, 0 updated, 0 unchanged, 0 disabled, 0 skipped, 0 errors");
    // Not a terminal: plain progress lines on stderr, none of them rewritten in place.
    expect(first.stderr).toContain("qrfleet: 6 instances listed by the partner account\n");
    expect(first.stderr).toContain("qrfleet: created 6 of 6\n");
    expect(first.stderr).not.toContain("\r");

    const [dry, second] = await Promise.all([qrfleet(["instance", "sync", "--dry-run", "--json"], env), qrfleet(["instance", "sync"], env)]);
    expect(dry.code).toBe(0);
    expect(JSON.parse(dry.stdout) as SyncReport).toMatchObject({ dryRun: true, listed: 6, created: 0, updated: 0, unchanged: 6, disabled: 0, errors: [], changes: [] });
    expect(second.code).toBe(0);
    expect(second.stdout).toContain("6 listed: 0 created, 0 updated, 6 unchanged, 0 disabled");
    expect(second.stdout).toContain("nothing to change: the fleet already matches the partner account");
    for (const out of [first, dry, second]) for (const s of secrets()) expect(out.stdout + out.stderr).not.toContain(s);
  });

  it("names each change and each entry it could not sync", () => {
    const text = describeSync({
      dryRun: false, listed: 3, created: 0, updated: 1, unchanged: 0, disabled: 1, skipped: 0,
      errors: [{ idInstance: "1101000003", message: "token: token must be 8 to 200 letters" }],
      changes: [
        { id: "a", idInstance: "1101000001", change: "updated", detail: ["label", "token"] },
        { id: "b", idInstance: "1101000002", change: "disabled", detail: "deleted" },
      ],
    });
    expect(text.split("\n")).toEqual([
      "partner account synced, 3 listed: 0 created, 1 updated, 0 unchanged, 1 disabled, 0 skipped, 1 errors",
      "  updated 1101000001 (label, token)",
      "  disabled 1101000002 (deleted by the account)",
      "  error 1101000003: token: token must be 8 to 200 letters",
    ]);
  });

  it("refuses a wrong or missing partner token with one line, never the token", async () => {
    const wrong = newToken();
    const [refused, missing] = await Promise.all([
      qrfleet(["instance", "sync"], { ...env, GREENAPI_PARTNER_TOKEN: wrong }),
      qrfleet(["instance", "sync"], { ...env, GREENAPI_PARTNER_TOKEN: "" }),
    ]);
    expect(refused.code).toBe(1);
    expect(refused.stderr.trim().split("\n").at(-1)).toMatch(/^qrfleet: GET http:\/\/127\.0\.0\.1:\d+\/partner\/getInstances\/\*\*\* answered HTTP 200 with code 401: .*the partner token is not accepted/);
    expect(refused.stdout + refused.stderr).not.toContain(wrong);
    expect(noStack(refused.stderr)).toBe(true);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("qrfleet: missing configuration: set GREENAPI_PARTNER_TOKEN to the partner token GREEN-API issued");
  });

  it("draws progress on a terminal as one line rewritten in place", () => {
    let written = "";
    const terminal = Object.assign(new Writable({ write: (chunk, _enc, done) => void ((written += String(chunk)), done()) }), { isTTY: true });
    const progress = progressReporter(terminal as unknown as NodeJS.WriteStream);
    progress.report({ step: "listed", done: 3000, total: 3000 });
    progress.report({ step: "created", done: 1000, total: 3000 });
    progress.report({ step: "created", done: 3000, total: 3000 });
    progress.end();
    expect(written).toBe("\r\x1b[2Kqrfleet: 3000 instances listed by the partner account\r\x1b[2Kqrfleet: created 1000 of 3000\r\x1b[2Kqrfleet: created 3000 of 3000\n");
  });
});
