import { Redis } from "ioredis";
import { expect } from "vitest";
import type { ScenarioReport } from "../../bench/chaos/scenario.js";
import { scanForSecrets, type ScanSource } from "../support/secret-scan.js";

/** Tokens searched in every spelling: spread over the fleet, so every kind of instance the scenario scripts is among them. */
const SAMPLED_TOKENS = 16;
/** Any instance token, in plain text: each one starts `chaostoken<i>x` and goes on in hex. */
const ANY_TOKEN = /chaostoken\d+x[0-9a-f]{8}/;

/**
 * Nothing a fault run wrote holds a secret it was given: the daemons' logs, every webhook request,
 * every email, the run's Redis keys and values, and every text column of its database. All 200
 * tokens in every spelling would be thousands of needles over megabytes, so every token is looked
 * for in plain text by its shape, and a sample of them, with the webhook secrets, the secret key
 * and the admin token, in every spelling.
 */
export async function expectNoSecretsWritten(r: ScenarioReport, redisUrl: string): Promise<void> {
  const c = r.captured;
  const { instanceTokens, webhookSecrets, secretKey, adminToken } = c.secrets;
  const step = Math.max(1, Math.floor(instanceTokens.length / SAMPLED_TOKENS));
  const secrets: Record<string, string> = { "secret key": secretKey, "admin token": adminToken };
  webhookSecrets.forEach((s, i) => (secrets[`webhook secret ${i + 1}`] = s));
  for (let i = 0; i < instanceTokens.length; i += step) secrets[`instance token ${i}`] = instanceTokens[i]!;

  const log = c.daemonLogLines.join("\n");
  const redis = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 2 });
  try {
    await redis.connect();
    const sources: ScanSource[] = [
      { kind: "text", name: `${r.name}: daemon logs`, text: log },
      ...c.webhooks.map((w, i): ScanSource => ({ kind: "http-request", name: `${r.name}: webhook ${i + 1}`, path: w.path, headers: w.headers, body: w.body })),
      ...c.emails.map((e, i): ScanSource => ({ kind: "email", name: `${r.name}: email ${i + 1}`, raw: e.raw })),
      { kind: "redis", redis, prefix: c.redisPrefix },
      { kind: "postgres", url: r.databaseUrl },
    ];
    expect(await scanForSecrets(secrets, sources)).toEqual([]);
  } finally {
    redis.disconnect();
  }
  const plain = [log, ...c.webhooks.map((w) => w.body), ...c.emails.map((e) => e.raw.toString("utf8"))];
  expect(plain.filter((t) => ANY_TOKEN.test(t)).map((t) => t.replace(ANY_TOKEN, "<instance token>").slice(0, 200))).toEqual([]);
  // The search saw the run: it wrote logs and delivered by both channels.
  expect(c.daemonLogLines.length).toBeGreaterThan(20);
  expect(c.webhooks.length).toBeGreaterThan(0);
  expect(c.emails.length).toBeGreaterThan(0);
}
