import { readFile } from "node:fs/promises";
import type { IncomingHttpHeaders } from "node:http";

/**
 * Everything a fault run saw the system write, kept per scenario so a scan for secrets can read
 * it afterwards: the daemons' log files, every webhook request as received (headers and raw
 * body, whatever the receiver answered) and every raw email. `secrets` lists what must never
 * appear in any of it.
 */

/** How the receiver answered one request. */
export type Answer = "ok" | "error500" | "hang" | "reset";

export interface CapturedWebhook {
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
  at: number;
  answer: Answer;
}

export interface CapturedEmail {
  raw: Buffer;
  at: number;
}

export interface RunSecrets {
  instanceTokens: string[];
  webhookSecrets: string[];
  secretKey: string;
  adminToken: string;
}

export class Captured {
  readonly webhooks: CapturedWebhook[] = [];
  readonly emails: CapturedEmail[] = [];
  /** Paths of the daemons' log files (stdout and stderr of each process). */
  readonly daemonLogPaths: string[] = [];
  readonly secrets: RunSecrets = { instanceTokens: [], webhookSecrets: [], secretKey: "", adminToken: "" };
  /** The run's Redis key prefix, so its keys and values can be searched too. */
  redisPrefix = "";

  /** Every line the daemons wrote, file by file; filled when the run closes (its log files may be deleted then). */
  daemonLogLines: string[] = [];

  async keepDaemonLogs(): Promise<void> {
    const texts = await Promise.all([...new Set(this.daemonLogPaths)].map((p) => readFile(p, "utf8").catch(() => "")));
    this.daemonLogLines = texts.flatMap((t) => t.split("\n").filter(Boolean));
  }

  /** Every secret of the run, as one list. */
  allSecrets(): string[] {
    const { instanceTokens, webhookSecrets, secretKey, adminToken } = this.secrets;
    return [...instanceTokens, ...webhookSecrets, secretKey, adminToken].filter(Boolean);
  }
}
