/**
 * One JSON line per failure on stderr, in the daemon's log format (pino level 50), so the
 * orchestrator counts a bare client's failures the same way as a daemon's.
 */
export function logFailure(msg: string, idInstance: string, err: unknown): void {
  const text = err instanceof Error ? err.message : String(err);
  process.stderr.write(`${JSON.stringify({ level: 50, time: Date.now(), msg, idInstance, err: text })}\n`);
}
