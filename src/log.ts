import { pino, type Logger, type DestinationStream } from "pino";

export type { Logger };

/**
 * GREEN-API puts the instance token in the URL path: {apiUrl}/waInstance{id}/{method}/{token}.
 * Masks that segment (and any query-string credential) wherever such a URL appears in text. The
 * partner API does the same with the partner token: {partnerApiUrl}/partner/{method}/{partnerToken}.
 */
const TOKEN_IN_PATH = /(\/waInstance\d+\/[A-Za-z]+\/)([^/\s"'?#<>]+)/g;
const PARTNER_TOKEN_IN_PATH = /(\/partner\/[A-Za-z]+\/)([^/\s"'?#<>]+)/g;
const CREDENTIAL_IN_QUERY = /([?&](?:token|apiTokenInstance|access_token|secret)=)([^&\s"'#]+)/gi;
const USERINFO_PASSWORD = /(\b[a-z][a-z0-9+.-]*:\/\/[^:/\s"'@]+:)([^@/\s"']+)(@)/gi;
export const MASK = "***";

/** Explicit secrets that may appear in free text (admin token, key, SMTP password). Kept small. */
const knownSecrets = new Set<string>();

export function registerSecret(secret: string | undefined): void {
  if (secret && secret.length >= 8) knownSecrets.add(secret);
}

/** The one masking function: used for URLs, error text, stored errors and every log line. */
export function maskSecrets(text: string): string {
  let out = text
    .replace(TOKEN_IN_PATH, `$1${MASK}`)
    .replace(PARTNER_TOKEN_IN_PATH, `$1${MASK}`)
    .replace(CREDENTIAL_IN_QUERY, `$1${MASK}`)
    .replace(USERINFO_PASSWORD, `$1${MASK}$3`);
  for (const secret of knownSecrets) {
    if (out.includes(secret)) out = out.split(secret).join(MASK);
  }
  return out;
}

const REDACT_PATHS = [
  "token",
  "apiTokenInstance",
  "secret",
  "password",
  "authorization",
  "*.token",
  "*.apiTokenInstance",
  "*.secret",
  "*.password",
  "*.authorization",
  "req.headers.authorization",
  "req.headers.cookie",
];

export function createLogger(opts: { level?: string; name?: string; destination?: DestinationStream } = {}): Logger {
  return pino(
    {
      level: opts.level ?? "info",
      base: opts.name ? { name: opts.name } : { pid: process.pid },
      redact: { paths: REDACT_PATHS, censor: MASK },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      hooks: { streamWrite: maskSecrets },
      serializers: { err: pino.stdSerializers.err },
    },
    opts.destination ?? pino.destination({ sync: false }),
  );
}

