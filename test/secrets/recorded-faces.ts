import { cliRunner, type CliResult } from "../cli/run.js";
import type { ScanSource } from "../support/secret-scan.js";

/**
 * The faces of a running fleet (its HTTP server and the `qrfleet` command) as a user drives them,
 * keeping every answer they gave, so the secret search can read all of it afterwards.
 */

export interface ApiAnswer {
  status: number;
  body: unknown;
}

export interface RecordedFaces {
  /** A request to the daemon with the admin token (or `token`); the answer is kept. */
  api(method: string, path: string, body?: unknown, token?: string): Promise<ApiAnswer>;
  /** A plain request (live page, metrics) whose answer is kept; `init` as for fetch. */
  get(path: string, init?: RequestInit): Promise<Response & { text: string }>;
  /** `qrfleet …` as a child process with the fleet's environment (plus `env`); its output is kept. */
  cli(args: string[], env?: Record<string, string>, input?: string): Promise<CliResult>;
  /** Everything answered so far, as sources for scanForSecrets. */
  sources(): ScanSource[];
  /** Bytes of answers recorded, to show the search was over something. */
  recordedChars(): number;
}

const headerLines = (headers: Headers) => [...headers].map(([k, v]) => `${k}: ${v}`).join("\n");

export function recordFaces(baseUrl: () => string, adminToken: string, env: () => Record<string, string>): RecordedFaces {
  const run = cliRunner();
  const kept: ScanSource[] = [];
  const keep = (name: string, text: string) => kept.push({ kind: "text", name, text });

  async function request(path: string, init: RequestInit = {}) {
    const res = await fetch(`${baseUrl()}${path}`, init);
    const text = await res.text();
    keep(`${init.method ?? "GET"} ${path.replace(/\/live\/[^/?]+/, "/live/…")} answer`, `${res.status}\n${headerLines(res.headers)}\n\n${text}`);
    return Object.assign(res, { text });
  }

  return {
    async api(method, path, body, token = adminToken) {
      const res = await request(path, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body !== undefined && { "content-type": "application/json" }) },
        ...(body !== undefined && { body: JSON.stringify(body) }),
      });
      return { status: res.status, body: res.text === "" ? null : (JSON.parse(res.text) as unknown) };
    },
    get: (path, init) => request(path, init),
    async cli(args, extra = {}, input) {
      const r = await run(args, { ...env(), ...extra }, input);
      keep(`qrfleet ${args[0]} ${args[1] ?? ""} stdout`, r.stdout);
      keep(`qrfleet ${args[0]} ${args[1] ?? ""} stderr (its log)`, r.stderr);
      return r;
    },
    sources: () => [...kept],
    recordedChars: () => kept.reduce((n, s) => n + (s.kind === "text" ? s.text.length : 0), 0),
  };
}
