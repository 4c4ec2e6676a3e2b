import { ConfigError, loadConfig, type Config } from "../../config.js";
import { maskSecrets, registerSecret } from "../../log.js";
import type { Check } from "./doctor-check.js";
import { checkProviders } from "./doctor-provider.js";
import { checkRedis, checkSmtp, openPostgres } from "./doctor-stores.js";

/**
 * `qrfleet doctor`: is this daemon's world ready? The configuration, PostgreSQL, Redis, SMTP and
 * the provider's hosts, each checked on its own with a bound, so one that hangs or refuses does
 * not hide the others. Every finding that is not OK says what fixes it. Nothing here writes.
 */

export type { Check, CheckArea, CheckStatus } from "./doctor-check.js";

export interface DoctorReport {
  /** No check failed or warned. */
  ok: boolean;
  failed: number;
  warned: number;
  checks: Check[];
}

export interface DoctorOptions {
  /** Instances whose webhook settings are read at the provider. Default: 20 */
  sample?: number;
  /** Bound of each check of PostgreSQL, Redis and SMTP, in ms. Default: 5000 */
  timeoutMs?: number;
  /** The environment to check. Default: the process's own (and .env), as loadConfig reads it */
  env?: NodeJS.ProcessEnv;
}

export const DEFAULT_PUBLIC_URL = "http://localhost:8080";
/** An admin token guards every instance token the API can change: as long as `openssl rand -hex 16` prints, at least. */
const ADMIN_TOKEN_MIN = 32;

export async function runDoctor(opts: DoctorOptions = {}): Promise<DoctorReport> {
  const timeoutMs = opts.timeoutMs ?? 5_000;
  const { config, checks } = checkConfiguration(opts.env);
  if (!config) return report(checks);
  const pg = await openPostgres(config, timeoutMs);
  try {
    const stores = await Promise.all([checkRedis(config, timeoutMs), checkSmtp(config, timeoutMs)]);
    const provider = await checkProviders(config, pg.client, opts.sample ?? 20);
    return report([...checks, ...pg.checks, ...stores.flat(), ...provider]);
  } finally {
    await pg.client?.end().catch(() => undefined);
  }
}

function report(checks: Check[]): DoctorReport {
  const shown = checks.map((c) => ({ ...c, detail: maskSecrets(c.detail), ...(c.fix !== undefined && { fix: maskSecrets(c.fix) }) }));
  const failed = shown.filter((c) => c.status === "fail").length;
  const warned = shown.filter((c) => c.status === "warn").length;
  return { ok: failed + warned === 0, failed, warned, checks: shown };
}

function checkConfiguration(env: NodeJS.ProcessEnv | undefined): { config: Config | null; checks: Check[] } {
  let config: Config;
  try {
    config = loadConfig(env, []);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    const detail = `${err.message}; the other checks need a configuration that loads`;
    return { config: null, checks: [{ area: "configuration", status: "fail", detail, fix: "set the keys named above (see .env.example)" }] };
  }
  for (const secret of [config.QRFLEET_ADMIN_TOKEN, config.QRFLEET_SECRET_KEY, ...config.QRFLEET_SECRET_KEYS_PREVIOUS, config.GREENAPI_PARTNER_TOKEN]) {
    registerSecret(secret);
  }
  registerSecret(new URL(config.SMTP_URL).password);
  const checks: Check[] = [{ area: "configuration", status: "ok", detail: "every key set parses" }, secretKeyCheck(config), adminTokenCheck(config), publicUrlCheck(config)];
  return { config, checks };
}

function secretKeyCheck(config: Config): Check {
  if (config.QRFLEET_SECRET_KEY !== "") return { area: "configuration", status: "ok", detail: "QRFLEET_SECRET_KEY is set" };
  return {
    area: "configuration",
    status: "fail",
    detail: "QRFLEET_SECRET_KEY is not set: the daemon does not start, and no instance token can be opened",
    fix: "set QRFLEET_SECRET_KEY to 32 random bytes in base64 (openssl rand -base64 32)",
  };
}

function adminTokenCheck(config: Config): Check {
  const length = config.QRFLEET_ADMIN_TOKEN.length;
  const fix = "set QRFLEET_ADMIN_TOKEN to a random string of at least 32 characters (openssl rand -hex 24)";
  if (length === 0) return { area: "configuration", status: "fail", detail: "QRFLEET_ADMIN_TOKEN is not set: the daemon does not start", fix };
  if (length < ADMIN_TOKEN_MIN) {
    const detail = `QRFLEET_ADMIN_TOKEN is ${length} characters: the admin API it guards can change every instance's token`;
    return { area: "configuration", status: "warn", detail, fix };
  }
  return { area: "configuration", status: "ok", detail: `QRFLEET_ADMIN_TOKEN is ${length} characters` };
}

function publicUrlCheck(config: Config): Check {
  const url = new URL(config.QRFLEET_PUBLIC_URL);
  const fix = "set QRFLEET_PUBLIC_URL to the https address operators and GREEN-API reach this daemon at";
  if (config.QRFLEET_PUBLIC_URL.replace(/\/+$/, "") === DEFAULT_PUBLIC_URL) {
    const detail = `QRFLEET_PUBLIC_URL is left at its default ${DEFAULT_PUBLIC_URL}: live links in emails and the provider's webhook address point at localhost`;
    return { area: "configuration", status: "warn", detail, fix };
  }
  if (url.protocol === "http:" && !["localhost", "127.0.0.1", "[::1]"].includes(url.hostname)) {
    const detail = `QRFLEET_PUBLIC_URL ${url.origin} is plain http: a live link is a credential, and it would travel in clear`;
    return { area: "configuration", status: "warn", detail, fix };
  }
  return { area: "configuration", status: "ok", detail: `QRFLEET_PUBLIC_URL is ${url.origin}${url.pathname.replace(/\/+$/, "")}` };
}
