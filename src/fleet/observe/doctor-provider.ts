import pMap from "p-map";
import type pg from "pg";
import type { Dispatcher } from "undici";
import type { Config } from "../../config.js";
import { GreenApiError, InvalidTokenError } from "../../greenapi/errors.js";
import { createGreenApiClient } from "../../greenapi/rest.js";
import type { WebhookSettings } from "../../greenapi/settings.js";
import type { InstanceAddress } from "../../greenapi/types.js";
import { guardedAgent } from "../../outbound-guard.js";
import { SecretBox } from "../../secrets.js";
import type { Check } from "./doctor-check.js";
import { assessSettings, fleetHookUrl } from "../instances/webhook-settings.js";

/**
 * What `qrfleet doctor` asks of the provider: one getStateInstance per apiUrl host (is it
 * reachable, how fast), and the webhook settings of a sample of instances (do their state changes
 * come here). Calls go out unpaced: a handful, and the pacing lives in Redis, which may be what is
 * broken. Tokens are opened here and used in URLs only, which every message masks.
 */

/** Hosts tried, those with the most instances first; a fleet rarely has more than a few. */
const MAX_HOSTS = 50;
const AT_ONCE = 8;
const SLOW_PROVIDER_MS = 2_000;
/** Instances named in one finding; the count covers the rest. */
const NAMED = 10;
const WEBHOOK_PLAN_COMMAND = "qrfleet instance webhooks --plan";

interface Sampled {
  apiUrl: string;
  idInstance: string;
  tokenCiphertext: Buffer;
  webhookTokenCiphertext: Buffer | null;
}

export async function checkProviders(config: Config, client: pg.Client | null, sample: number): Promise<Check[]> {
  if (!client) return [skipped("provider", "PostgreSQL cannot be used, so the instances to try are not known")];
  if (config.QRFLEET_SECRET_KEY === "") return [skipped("provider", "QRFLEET_SECRET_KEY is not set, so no instance token can be opened")];
  const box = new SecretBox(config.QRFLEET_SECRET_KEY, config.QRFLEET_SECRET_KEYS_PREVIOUS);
  // The doctor connects where the daemon would, and no further: the same address checks.
  const agent = guardedAgent({ allowPrivate: config.QRFLEET_ALLOW_PRIVATE_PROVIDER, knob: "QRFLEET_ALLOW_PRIVATE_PROVIDER" });
  const call: Calls = { config, box, agent };
  try {
    return [...(await hostChecks(call, client)), ...(await webhookChecks(call, client, sample))];
  } finally {
    await agent.close();
  }
}

interface Calls {
  config: Config;
  box: SecretBox;
  agent: Dispatcher;
}

const skipped = (area: Check["area"], detail: string): Check => ({ area, status: "skip", detail });

/** One 429 is waited out (a daemon may have just called the same instance), briefly: a doctor run is interactive. */
const doctorClient = ({ config, agent }: Calls, address: InstanceAddress) =>
  createGreenApiClient(address, { timeoutMs: config.QRFLEET_HTTP_TIMEOUT_MS, rateLimitRetries: 1, retryAfterMaxMs: 2_000, dispatcher: agent });

function opened(box: SecretBox, row: Sampled): InstanceAddress | null {
  try {
    return { apiUrl: row.apiUrl, idInstance: row.idInstance, token: box.open(row.tokenCiphertext) };
  } catch {
    return null;
  }
}

async function hostChecks(call: Calls, client: pg.Client): Promise<Check[]> {
  const { rows } = await client.query<Sampled & { instances: number }>(
    `WITH hosts AS (SELECT "apiUrl", count(*)::int AS instances FROM "Instance" WHERE enabled GROUP BY "apiUrl" ORDER BY 2 DESC LIMIT $1)
     SELECT DISTINCT ON (h."apiUrl") h."apiUrl", h.instances, i."idInstance", i."tokenCiphertext", i."webhookTokenCiphertext"
       FROM hosts h JOIN "Instance" i ON i."apiUrl" = h."apiUrl" AND i.enabled
      ORDER BY h."apiUrl", i."lastStateAt" DESC NULLS LAST`,
    [MAX_HOSTS],
  );
  if (rows.length === 0) return [skipped("provider", "no enabled instance, so no host to try")];
  return pMap(rows, (row) => hostCheck(call, row), { concurrency: AT_ONCE });
}

async function hostCheck(call: Calls, row: Sampled & { instances: number }): Promise<Check> {
  const about = `${row.apiUrl} (${row.instances} instance${row.instances === 1 ? "" : "s"})`;
  const address = opened(call.box, row);
  if (!address) return unreadableToken(row.idInstance, about);
  const client = doctorClient(call, address);
  const started = performance.now();
  try {
    const { raw } = await client.getStateInstance();
    const ms = Math.round(performance.now() - started);
    const detail = `${about}: getStateInstance of ${row.idInstance} answered ${raw} in ${ms} ms`;
    if (ms <= SLOW_PROVIDER_MS) return { area: "provider", status: "ok", detail, latencyMs: ms };
    return { area: "provider", status: "warn", detail: `${detail}, slowly`, latencyMs: ms, fix: "check the network path from this host to the provider (DNS, proxy, route)" };
  } catch (err) {
    return hostFailure(err, row.idInstance, about);
  }
}

function hostFailure(err: unknown, idInstance: string, about: string): Check {
  const message = err instanceof GreenApiError ? err.message : "the call failed";
  if (err instanceof InvalidTokenError) {
    return { area: "provider", status: "warn", detail: `${about} answers, but refuses the token of instance ${idInstance}: ${message}`, fix: `qrfleet instance update ${idInstance} --token -` };
  }
  if (err instanceof GreenApiError && err.status !== undefined && err.status < 500 && err.status !== 429) {
    return { area: "provider", status: "warn", detail: `${about} answers, but not as it should: ${message}`, fix: `qrfleet instance show ${idInstance}, and check its apiUrl and idInstance in the GREEN-API console` };
  }
  return { area: "provider", status: "fail", detail: `${about} cannot be used: ${message}`, fix: "check the network path from this host to that apiUrl (DNS, firewall, proxy), and the apiUrl of its instances" };
}

const unreadableToken = (idInstance: string, about: string): Check => ({
  area: "provider",
  status: "warn",
  detail: `${about}: the token of instance ${idInstance} opens under none of the configured keys`,
  fix: `qrfleet instance update ${idInstance} --token - (or list the key it was sealed with in QRFLEET_SECRET_KEYS_PREVIOUS)`,
});

type Verdict = { kind: "ok" } | { kind: "not_here" | "foreign" | "unread"; why: string };

/** What one instance's settings mean for this fleet, in words that carry no secret (assessSettings). */
function webhookVerdict(settings: WebhookSettings, ours: { url: string; token: string | null }): Verdict {
  const seen = assessSettings(settings, ours);
  if (seen.setup === "ours") return { kind: "ok" };
  if (seen.setup === "unset") return { kind: "not_here", why: "webhookUrl is not set" };
  if (seen.setup === "foreign") return { kind: "foreign", why: `webhookUrl points at ${seen.host}` };
  const missing = [
    ...(seen.stateWebhook ? [] : ["stateWebhook is off"]),
    ...(seen.token === "none" ? ["webhookUrlToken is not set"] : seen.token === "other" ? ["its webhookUrlToken is not the webhook token qrfleet has for it"] : []),
  ];
  return { kind: "not_here", why: `ours, but ${missing.join(" and ")}` };
}

async function webhookChecks(call: Calls, client: pg.Client, sample: number): Promise<Check[]> {
  if (sample === 0) return [];
  const { rows } = await client.query<Sampled>(
    `SELECT "apiUrl", "idInstance", "tokenCiphertext", "webhookTokenCiphertext" FROM "Instance" WHERE enabled ORDER BY random() LIMIT $1`,
    [sample],
  );
  if (rows.length === 0) return [skipped("webhooks", "no enabled instance to sample")];
  const expected = fleetHookUrl(call.config);
  const verdicts = await pMap(rows, async (row) => ({ id: row.idInstance, verdict: await sampleOne(call, row, expected) }), { concurrency: AT_ONCE });
  return summarize(verdicts, rows.length, expected);
}

async function sampleOne(call: Calls, row: Sampled, expected: string): Promise<Verdict> {
  const { box } = call;
  const address = opened(box, row);
  if (!address) return { kind: "unread", why: "its token opens under none of the configured keys" };
  let token: string | null = null;
  try {
    token = row.webhookTokenCiphertext ? box.open(row.webhookTokenCiphertext) : null;
  } catch {
    // A webhook token no key opens is as good as none: the provider's webhooks would be refused.
  }
  try {
    const settings = await doctorClient(call, address).getSettings();
    return webhookVerdict(settings, { url: expected, token });
  } catch (err) {
    // The instance is named already: its masked URL would only repeat it.
    return { kind: "unread", why: err instanceof GreenApiError ? `getSettings ${err.message.replace(/^GET \S+ /, "")}` : "getSettings failed" };
  }
}

function summarize(verdicts: Array<{ id: string; verdict: Verdict }>, sampled: number, expected: string): Check[] {
  const of = (kind: Verdict["kind"]) => verdicts.flatMap(({ id, verdict }) => (verdict.kind === kind && "why" in verdict ? [`${id}: ${verdict.why}`] : []));
  const named = (items: string[]) => `${items.slice(0, NAMED).join("; ")}${items.length > NAMED ? `; and ${items.length - NAMED} more` : ""}`;
  const counted = (n: number) => `${n} of ${sampled} sampled instance${sampled === 1 ? "" : "s"}`;
  const [notHere, foreign, unread] = [of("not_here"), of("foreign"), of("unread")];
  const checks: Check[] = [];
  if (notHere.length > 0) {
    checks.push({ area: "webhooks", status: "fail", detail: `${counted(notHere.length)} do not send their state to ${expected}: ${named(notHere)}`, fix: `${WEBHOOK_PLAN_COMMAND}, then qrfleet instance webhooks --apply` });
  }
  if (foreign.length > 0) {
    const detail = `${counted(foreign.length)} send their webhooks to another receiver, which qrfleet never takes over: ${named(foreign)}`;
    checks.push({ area: "webhooks", status: "warn", detail, fix: `have that receiver forward stateInstanceChanged to ${expected} with the instance's webhook token (README, "The provider's webhook")` });
  }
  if (unread.length > 0) {
    checks.push({ area: "webhooks", status: "warn", detail: `${counted(unread.length)} could not be read: ${named(unread)}`, fix: "see the provider check of the same host above" });
  }
  if (checks.length === 0) checks.push({ area: "webhooks", status: "ok", detail: `${counted(sampled)} send their state to ${expected}, with their webhook token` });
  return checks;
}
