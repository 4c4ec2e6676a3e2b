import { maskSecrets } from "../log.js";
import type { FailureReason, SessionNotice, SessionOutcome } from "./types.js";

/** Pieces both QR transports (websocket and REST polling) build their single outcome from. */

export function failed(reason: FailureReason, message: string): SessionOutcome {
  return { kind: "failed", reason, message };
}

export function errorText(err: unknown): string {
  return maskSecrets(err instanceof Error ? err.message : String(err)).slice(0, 500);
}

export function abortReason(signal: AbortSignal | undefined): string {
  const r: unknown = signal?.reason;
  if (r instanceof Error) return maskSecrets(r.message) || r.name;
  return typeof r === "string" && r !== "" ? maskSecrets(r) : "aborted";
}

/** Reports a notice; an observer's bug must not change the session's outcome. */
export function notify(onNotice: ((n: SessionNotice) => void) | undefined, notice: SessionNotice): void {
  try {
    onNotice?.(notice);
  } catch {
    // swallowed on purpose: see above
  }
}
