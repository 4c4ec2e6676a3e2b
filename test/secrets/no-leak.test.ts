import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "../../src/log.js";
import { startSimulator, type Script, type Simulator } from "../../src/simulator/index.js";
import { readEvents } from "../live/support.js";
import { newIdInstance, newPrefix, waitFor } from "../support/fleet.js";
import { startReceiver, type Receiver } from "../support/receiver.js";
import { countRedisKeys, scanForSecrets, type ScanSource } from "../support/secret-scan.js";
import { startSmtp, type TestSmtp } from "../support/smtp.js";
import { spawnDaemon, type Spawned } from "../support/spawn.js";
import { recordFaces } from "./recorded-faces.js";

/**
 * Distinctive secrets go into a fleet that is then used the way people use it: instances added by
 * the CLI and the API, sessions that show QR codes and end authorized, wrong_number and failed
 * (with a provider error that quotes the token), email and webhook deliveries, the provider's
 * webhook, the live page, every listing, /metrics and a key rotation. Then everything the system
 * wrote (logs, answers, emails, webhooks, Redis, every text column of PostgreSQL) is searched.
 */

const hex = (n: number) => randomBytes(n).toString("hex");
const OLD_KEY = randomBytes(32).toString("base64");
const NEW_KEY = randomBytes(32).toString("base64");
const ADMIN = `adminLEAK${hex(12)}`;
const prefix = newPrefix();

interface Planted {
  idInstance: string;
  token: string;
  webhookToken: string;
  script: Partial<Script>;
}
const instance = (script: Partial<Script>): Planted => ({ idInstance: newIdInstance(), token: `tokLEAK${hex(14)}`, webhookToken: `whtokLEAK${hex(12)}`, script });
const viaCli = instance({ fate: "scan", scanAfterMs: 700 });
const wrongPhone = instance({ fate: "scan", scanAfterMs: 500, phone: "79001112233" });
const providerError = instance({ fate: "provider_error" });
const refused = instance({ fate: "wrong_token" });
providerError.script.errorMessage = `token ${providerError.token} is not valid for webhook ${providerError.webhookToken}`;
const CHANNEL_SECRETS = { cli: `whsec_${randomBytes(24).toString("base64")}`, api: `whsec_${randomBytes(24).toString("base64")}` };

let smtp: TestSmtp;
let receiver: Receiver;
let daemon: Spawned;
let daemonUrl = "";
let sim: Simulator;
let redis: Redis;
const fleetEnv = () => ({
  QRFLEET_REDIS_PREFIX: prefix, QRFLEET_ADMIN_TOKEN: ADMIN, QRFLEET_SECRET_KEY: NEW_KEY, QRFLEET_SECRET_KEYS_PREVIOUS: OLD_KEY,
  SMTP_URL: smtp.url, LOG_LEVEL: "debug",
});
const faces = recordFaces(() => daemonUrl, ADMIN, fleetEnv);
/** The fleet as it was before the key changed: what it sealed is under the old key. */
const BEFORE_ROTATION = { QRFLEET_SECRET_KEY: OLD_KEY, QRFLEET_SECRET_KEYS_PREVIOUS: "" };

beforeAll(async () => {
  [smtp, receiver] = await Promise.all([startSmtp(), startReceiver()]);
  daemon = spawnDaemon({ ...fleetEnv(), QRFLEET_WEBHOOK_TIMEOUT_MS: "3000" });
  const started = await daemon.waitForLine(/qrfleet daemon started/, 60_000);
  daemonUrl = (JSON.parse(started) as { url: string }).url;
  sim = await startSimulator({
    defaults: { rotationMs: 200, scanWindowMs: 4000 }, webhookUrl: `${daemonUrl}/hooks/greenapi`, log: createLogger({ level: "silent" }),
  });
  for (const p of [viaCli, wrongPhone, providerError, refused]) sim.define({ idInstance: p.idInstance, token: p.token, webhookToken: p.webhookToken, ...p.script });
  redis = new Redis(process.env.REDIS_URL ?? "redis://127.0.0.1:6379");
}, 90_000);
afterAll(async () => {
  if (daemon && daemon.child.exitCode === null && daemon.child.signalCode === null) daemon.child.kill("SIGKILL");
  redis?.disconnect();
  await Promise.all([sim?.close(), smtp?.close(), receiver?.close()]);
});

const ok = (status: number) => expect(status).toBeLessThan(300);

async function sessionEnd(id: string): Promise<string> {
  return waitFor("the session to end", async () => {
    const s = (await faces.api("GET", `/api/sessions/${id}`)).body as { status: string };
    return s.status !== "queued" && s.status !== "running" && s.status;
  }, 30_000, 250);
}

async function addFleet() {
  const cliAdd = faces.cli(
    ["instance", "add", "--api-url", sim.url, "--id", viaCli.idInstance, "--token", "-", "--webhook-token", viaCli.webhookToken, "--label", "CLI desk", "--json"],
    BEFORE_ROTATION, `${viaCli.token}\n`,
  );
  const cliOperator = faces.cli(
    ["operator", "add", "--name", "ops-cli", "--email", "ops@example.test", "--webhook", `${receiver.url}?op=cli`, "--webhook-secret", CHANNEL_SECRETS.cli, "--json"],
    BEFORE_ROTATION,
  );
  for (const [p, phone] of [[wrongPhone, "79990000001"], [providerError, undefined], [refused, undefined]] as const) {
    const body = { apiUrl: sim.url, idInstance: p.idInstance, token: p.token, webhookToken: p.webhookToken, maxAttempts: 1, ...(phone && { phone }) };
    ok((await faces.api("POST", "/api/instances", body)).status);
  }
  ok((await faces.api("POST", "/api/operators", { name: "ops-api", webhook: `${receiver.url}?op=api`, webhookSecret: CHANNEL_SECRETS.api })).status);
  expect((await cliAdd).code).toBe(0);
  expect((await cliOperator).code).toBe(0);
  // Refusals quote what they refuse: a token sent where it does not belong must not come back.
  expect((await faces.api("POST", "/api/instances", { apiUrl: "ftp://x", idInstance: "12", token: refused.token })).status).toBe(400);
  expect((await faces.api("GET", "/api/instances", undefined, refused.token)).status).toBe(401);
  for (const p of [viaCli, wrongPhone, providerError, refused]) {
    ok((await faces.api("POST", "/api/assignments", { instance: p.idInstance, operator: "ops-api" })).status);
  }
  expect((await faces.cli(["assign", viaCli.idInstance, "ops-cli"])).code).toBe(0);
}

/** Sessions from every trigger a user has: the provider's webhook, the CLI and the API. */
async function runSessions(): Promise<{ ids: Record<string, string>; outcomes: Record<string, string> }> {
  sim.setState(viaCli.idInstance, "authorized");
  await waitFor("the provider's authorized webhook to be recorded", async () =>
    ((await faces.api("GET", `/api/instances/${viaCli.idInstance}`)).body as { lastState: string }).lastState === "authorized");
  sim.setState(viaCli.idInstance, "notAuthorized");
  const byProvider = await waitFor("the provider's webhook to start a session", async () => {
    const list = (await faces.api("GET", `/api/sessions?instance=${viaCli.idInstance}`)).body as { sessions: Array<{ id: string }> };
    return list.sessions[0]?.id;
  });
  const enqueued = await faces.cli(["enqueue", providerError.idInstance, "--json"]);
  expect(enqueued.code).toBe(0);
  const ids: Record<string, string> = { [viaCli.idInstance]: byProvider, [providerError.idInstance]: (JSON.parse(enqueued.stdout) as { session: { id: string } }).session.id };
  for (const p of [wrongPhone, refused]) {
    const started = await faces.api("POST", `/api/instances/${p.idInstance}/sessions`, {});
    ok(started.status);
    ids[p.idInstance] = (started.body as { id: string }).id;
  }
  const outcomes = Object.fromEntries(await Promise.all(Object.entries(ids).map(async ([idInstance, id]) => [idInstance, await sessionEnd(id)])));
  return { ids, outcomes };
}

async function useLivePage() {
  const mail = await smtp.waitFor((m) => m.to.includes("ops@example.test"), 20_000);
  const link = /https?:\/\/[^\s"<>]+\/live\/[A-Za-z0-9_-]+/.exec(mail.parsed.text ?? "")![0];
  const path = new URL(link).pathname;
  expect((await faces.get(path)).status).toBe(200);
  await faces.get(path, { headers: { accept: "application/json" } });
  const events = await fetch(`${daemonUrl}${path}/events`);
  const streamed = await readEvents(events, (e) => e.length > 0, 3000);
  const pagePost = { method: "POST", headers: { "content-type": "application/json", "sec-fetch-site": "same-origin" } };
  await faces.get(`${path}/sessions`, { ...pagePost, body: "{}" });
  await faces.get(`${path}/pair`, { ...pagePost, body: JSON.stringify({ phoneNumber: "79001234567" }) });
  return streamed.text;
}

async function lookAround(sessionId: string) {
  const reads = [
    "/api/instances", `/api/instances/${viaCli.idInstance}`, `/api/instances/${providerError.idInstance}`, "/api/sessions",
    `/api/sessions/${sessionId}`, "/api/deliveries", "/api/operators", "/api/operators/ops-cli", "/api/status",
  ];
  for (const path of reads) ok((await faces.api("GET", path)).status);
  for (const path of ["/metrics", "/healthz", "/readyz"]) ok((await faces.get(path)).status);
  const commands = [
    ["instance", "list"], ["instance", "list", "--json"], ["instance", "show", providerError.idInstance], ["instance", "show", viaCli.idInstance, "--json"],
    ["sessions"], ["session", "show", sessionId, "--json"], ["deliveries", "--json"], ["status"], ["operator", "list", "--json"], ["operator", "show", "ops-cli"],
  ];
  const results = await Promise.all(commands.map((args) => faces.cli(args)));
  expect(results.map((r) => r.code)).toEqual(commands.map(() => 0));
}

describe("secrets in everything the system writes", () => {
  it("finds none of them after a full run", { timeout: 240_000 }, async () => {
    await addFleet();
    const { ids, outcomes } = await runSessions();
    expect(outcomes).toEqual({
      [viaCli.idInstance]: "authorized", [wrongPhone.idInstance]: "wrong_number", [providerError.idInstance]: "failed", [refused.idInstance]: "failed",
    });
    const stream = await useLivePage();
    await lookAround(ids[providerError.idInstance]!);

    const check = await faces.cli(["rotate-key", "--check"]);
    expect(check.stdout).toMatch(/instance tokens: 1 under an old key/);
    const rotation = await faces.cli(["rotate-key"]);
    expect(rotation.code).toBe(0);
    expect(rotation.stdout).toContain("instance tokens: 1 re-encrypted, 3 already current, 0 unreadable");

    await waitFor("every delivery to be final", async () => {
      const { deliveries } = (await faces.api("GET", "/api/deliveries?status=pending")).body as { deliveries: unknown[] };
      return deliveries.length === 0;
    }, 30_000, 250);
    daemon.child.kill("SIGTERM");
    expect((await daemon.exited).code).toBe(0);

    const sources: ScanSource[] = [
      { kind: "text", name: "daemon log", text: daemon.lines.join("\n") },
      { kind: "text", name: "live page event stream", text: stream },
      ...faces.sources(),
      ...smtp.messages.map((m, i): ScanSource => ({ kind: "email", name: `email ${i + 1} to ${m.to.join(",")}`, raw: m.raw })),
      ...receiver.requests.map((r, i): ScanSource => ({ kind: "http-request", name: `webhook ${i + 1}`, ...r })),
      { kind: "redis", redis, prefix },
      { kind: "postgres", url: process.env.DATABASE_URL! },
    ];
    // What was searched is not nothing: the run wrote logs, emails, webhooks, Redis keys and answers.
    expect(daemon.lines.length).toBeGreaterThan(50);
    expect(smtp.messages.length).toBeGreaterThan(0);
    expect(new Set(receiver.requests.map((r) => r.path))).toEqual(new Set([`/hook?op=cli`, `/hook?op=api`]));
    expect(await countRedisKeys(redis, prefix)).toBeGreaterThan(5);
    expect(faces.recordedChars()).toBeGreaterThan(10_000);

    const secrets: Record<string, string> = {
      "admin token": ADMIN, "current secret key": NEW_KEY, "previous secret key": OLD_KEY,
      "current secret key (hex)": Buffer.from(NEW_KEY, "base64").toString("hex"),
      "channel secret (CLI)": CHANNEL_SECRETS.cli, "channel secret (API)": CHANNEL_SECRETS.api,
    };
    for (const [name, p] of Object.entries({ viaCli, wrongPhone, providerError, refused })) {
      secrets[`instance token ${name}`] = p.token;
      secrets[`webhook token ${name}`] = p.webhookToken;
    }
    expect(await scanForSecrets(secrets, sources)).toEqual([]);
  });
});
