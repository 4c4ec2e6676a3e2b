/** What `qrfleet doctor` reports of one thing it checked. */
export type CheckStatus = "ok" | "warn" | "fail" | "skip";
export type CheckArea = "configuration" | "postgresql" | "redis" | "smtp" | "provider" | "webhooks";

export interface Check {
  area: CheckArea;
  status: CheckStatus;
  /** What was found, in a sentence; never a secret. */
  detail: string;
  /** The command or setting that fixes it, when it is not OK. */
  fix?: string;
  latencyMs?: number;
}
