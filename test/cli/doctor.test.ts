import { spawn, type ChildProcess } from "node:child_process";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../../bench/daemons.js";
import type { Check, DoctorReport } from "../../src/fleet/observe/doctor.js";
import { addInstance } from "../../src/fleet/instances/instances.js";
import { createLogger } from "../../src/log.js";
import { startSimulator, type Simulator } from "../../src/simulator/index.js";
import { newIdInstance, newPrefix, newToken, testFleet, waitFor } from "../support/fleet.js";
import { startRedisCluster } from "../support/redis-cluster.js";
import { startSmtp, type TestSmtp } from "../support/smtp.js";
import { cliRunner, noStack } from "./run.js";

const qrfleet = cliRunner();
const PUBLIC_URL = "https://qrfleet.example.test";
const HOOK_URL = `${PUBLIC_URL}/hooks/greenapi`;
const ADMIN_TOKEN = "doctor-admin-token-0123456789abcdef0123";

let fleet: ReturnType<typeof testFleet>;
let smtp: TestSmtp;
/** Sends the provider's webhooks to this daemon's address, as `instance webhooks` would set it. */
let hooked: Simulator;
/** An instance whose webhook address was never set. */
let unhooked: Simulator;
let evicting: { url: string; port: number; child: ChildProcess };
const secrets: string[] = [ADMIN_TOKEN, process.env.QRFLEET_SECRET_KEY!];

/** A Redis of this file's own, set as BullMQ must never run on: it may evict keys. */
async function startEvictingRedis(): Promise<typeof evicting> {
  const port = await freePort();
  const child = spawn(
    "redis-server",
    ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--maxmemory-policy", "allkeys-lru"],
    { stdio: "ignore" },
  );
  child.on("error", () => undefined);
  const probe = new Redis({ port, host: "127.0.0.1", lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  probe.on("error", () => undefined);
  await waitFor("the test's own redis-server", () => probe.connect().then(() => probe.ping(), () => null), 10_000, 100);
  probe.disconnect();
  return { url: `redis://127.0.0.1:${port}`, port, child };
}

/** An instance on `sim`, in the fleet with the webhook token the provider sends for it. */
async function instanceAt(sim: Simulator | string): Promise<string> {
  const idInstance = newIdInstance();
  const [token, webhookToken] = [newToken(), newToken()];
  secrets.push(token, webhookToken);
  if (typeof sim !== "string") sim.define({ idInstance, token, webhookToken });
  await addInstance(fleet, { apiUrl: typeof sim === "string" ? sim : sim.url, idInstance, token, webhookToken });
  return idInstance;
}

beforeAll(async () => {
  fleet = testFleet({ QRFLEET_REDIS_PREFIX: newPrefix() });
  const log = createLogger({ level: "silent" });
  [smtp, hooked, unhooked, evicting] = await Promise.all([
    startSmtp(), startSimulator({ webhookUrl: HOOK_URL, log }), startSimulator({ log }), startEvictingRedis(),
  ]);
});

afterAll(async () => {
  evicting?.child.kill("SIGKILL");
  await Promise.all([fleet?.close(), smtp?.close(), hooked?.close(), unhooked?.close()]);
});

const goodEnv = () => ({ QRFLEET_PUBLIC_URL: PUBLIC_URL, QRFLEET_ADMIN_TOKEN: ADMIN_TOKEN, SMTP_URL: smtp.url });
const inArea = (r: DoctorReport, area: Check["area"]) => r.checks.filter((c) => c.area === area);

describe("qrfleet doctor", { timeout: 120_000 }, () => {
  it("checks every service and says OK when the world is right", async () => {
    const ids = [await instanceAt(hooked), await instanceAt(hooked)];
    const r = await qrfleet([`doctor`, "--json"], goodEnv());
    const report = JSON.parse(r.stdout) as DoctorReport;
    expect(report.checks.filter((c) => c.status === "fail")).toEqual([]);
    expect(r.code).toBe(report.warned === 0 ? 0 : 1);
    expect(inArea(report, "configuration").every((c) => c.status === "ok")).toBe(true);
    expect(inArea(report, "postgresql").map((c) => c.detail)).toContain("every migration of this version is applied");
    expect(inArea(report, "redis").map((c) => c.detail)).toContain("maxmemory-policy is noeviction on 127.0.0.1:6379");
    expect(inArea(report, "smtp")[0]!.detail).toMatch(/^127\.0\.0\.1:\d+ accepts a connection and EHLO in \d+ ms$/);
    expect(inArea(report, "provider")[0]!.detail).toMatch(new RegExp(`^${hooked.url} \\(2 instances\\): getStateInstance of (${ids.join("|")}) answered notAuthorized in \\d+ ms`));
    expect(inArea(report, "webhooks")).toEqual([
      { area: "webhooks", status: "ok", detail: `2 of 2 sampled instances send their state to ${HOOK_URL}, with their webhook token` },
    ]);
  });

  it("names each problem with what fixes it, masks every token, and exits 1", async () => {
    const notSet = await instanceAt(unhooked);
    const customers = await instanceAt(hooked);
    hooked.changeSettings(customers, { webhookUrl: "https://crm.example.test/green/hook?key=crm-secret-123" });
    const nowhere = `http://127.0.0.1:${await freePort()}`;
    const lost = await instanceAt(nowhere);
    const smtpPort = await freePort();
    const env = { ...goodEnv(), REDIS_URL: evicting.url, SMTP_URL: `smtp://mailer:hunter2hunter2@127.0.0.1:${smtpPort}`, QRFLEET_ADMIN_TOKEN: "short-admin-token-0" };
    // One after the other: each reads the sampled instances' settings, which the provider allows once a second per instance.
    const text = await qrfleet(["doctor"], env);
    const json = await qrfleet(["doctor", "--json"], env);
    expect(text.code).toBe(1);
    expect(json.code).toBe(1);
    expect(noStack(text.stderr)).toBe(true);
    for (const out of [text.stdout + text.stderr, json.stdout + json.stderr]) {
      for (const secret of [...secrets, "hunter2hunter2", "short-admin-token-0", "crm-secret-123"]) expect(out).not.toContain(secret);
    }

    expect(text.stdout).toContain(
      `  FAIL  maxmemory-policy is allkeys-lru on 127.0.0.1:${evicting.port}: BullMQ needs noeviction, or Redis may drop queued jobs when it fills\n` +
        `        fix: redis-cli -h 127.0.0.1 -p ${evicting.port} CONFIG SET maxmemory-policy noeviction`,
    );
    expect(text.stdout).toContain(`  FAIL  cannot use 127.0.0.1:${smtpPort}: connect ECONNREFUSED 127.0.0.1:${smtpPort}; operators get no email\n        fix: check SMTP_URL`);
    expect(text.stdout).toContain("  WARN  QRFLEET_ADMIN_TOKEN is 19 characters");
    expect(text.stdout).toMatch(/^ {2}ok {4}every migration of this version is applied$/m);
    expect(text.stdout).toMatch(/problems? and \d+ warnings?: fix them and run qrfleet doctor again\n$/);

    const report = JSON.parse(json.stdout) as DoctorReport;
    expect(report.ok).toBe(false);
    const providers = inArea(report, "provider");
    expect(providers.find((c) => c.detail.startsWith(hooked.url))?.status).toBe("ok");
    expect(providers.find((c) => c.detail.startsWith(unhooked.url))?.status).toBe("ok");
    expect(providers.find((c) => c.detail.startsWith(nowhere))).toMatchObject({
      status: "fail",
      detail: expect.stringMatching(new RegExp(`cannot be used: GET ${nowhere}/waInstance${lost}/getStateInstance/\\*\\*\\* failed \\(ECONNREFUSED\\)`)),
    });
    const webhooks = inArea(report, "webhooks");
    expect(webhooks.find((c) => c.status === "fail")).toEqual({
      area: "webhooks",
      status: "fail",
      detail: `1 of 5 sampled instances do not send their state to ${HOOK_URL}: ${notSet}: webhookUrl is not set`,
      fix: "qrfleet instance webhooks --plan, then qrfleet instance webhooks --apply",
    });
    expect(webhooks.filter((c) => c.status === "warn").map((c) => c.detail)).toEqual([
      `1 of 5 sampled instances send their webhooks to another receiver, which qrfleet never takes over: ${customers}: webhookUrl points at crm.example.test`,
      `1 of 5 sampled instances could not be read: ${lost}: getSettings failed (ECONNREFUSED)`,
    ]);
  });

  it("connects only where the daemon may: a provider on a private address is refused unless allowed, and never called", async () => {
    await instanceAt(hooked);
    const before = hooked.stats().restRequests + unhooked.stats().restRequests;
    const r = await qrfleet(["doctor", "--json"], { ...goodEnv(), QRFLEET_ALLOW_PRIVATE_PROVIDER: "false" });
    const report = JSON.parse(r.stdout) as DoctorReport;
    const provider = inArea(report, "provider").find((c) => c.detail.startsWith(hooked.url));
    expect(provider).toMatchObject({ status: "fail", detail: expect.stringContaining("refused: 127.0.0.1 is a loopback or private address") });
    expect(inArea(report, "webhooks").map((c) => c.detail).join("\n")).toMatch(/could not be read: .*getSettings .*refused/);
    expect(hooked.stats().restRequests + unhooked.stats().restRequests).toBe(before);
  });

  it("reads the eviction policy of every master of a Redis Cluster", async () => {
    const cluster = await startRedisCluster();
    try {
      const r = await qrfleet(["doctor", "--json", "--sample", "0"], { ...goodEnv(), REDIS_CLUSTER: "true", REDIS_URL: cluster.url });
      const policies = inArea(JSON.parse(r.stdout) as DoctorReport, "redis").filter((c) => c.detail.startsWith("maxmemory-policy"));
      expect(policies.map((c) => c.detail).sort()).toEqual(cluster.ports.map((p) => `maxmemory-policy is noeviction on 127.0.0.1:${p}`).sort());
    } finally {
      await cluster.stop();
    }
  });

  it("stops at a configuration that does not load, saying what to set", async () => {
    const r = await qrfleet(["doctor", "--json"], { QRFLEET_PUBLIC_URL: "not a url" });
    expect(r.code).toBe(1);
    const report = JSON.parse(r.stdout) as DoctorReport;
    expect(report.checks).toHaveLength(1);
    expect(report.checks[0]).toMatchObject({ area: "configuration", status: "fail", detail: expect.stringMatching(/QRFLEET_PUBLIC_URL must be a URL starting with http:\/\/ or https:\/\//) });
  });
});
