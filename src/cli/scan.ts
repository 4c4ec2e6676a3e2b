import { Command } from "commander";
import { parseAddress, parseApiUrl, parseIdInstance } from "../greenapi/urls.js";
import { runSocketAttempt } from "../greenapi/socket-attempt.js";
import { connectorFor } from "../greenapi/socket.js";
import type { InstanceAddress, QrImage, AttemptNotice, AttemptOutcome } from "../greenapi/types.js";
import { maskSecrets, registerSecret } from "../log.js";
import { cliConfig, cliLogger } from "./context.js";
import { EXIT, intArg, print, printJson, secretArg, type Out } from "./output.js";
import { qrTextOf, terminalQr } from "./qr-terminal.js";

interface ScanOpts extends Out {
  apiUrl: string;
  id: string;
  token: string;
  silenceMs?: number;
  timeoutMs?: number;
}

/** How a scan shows what happens: drawn in the terminal, or one JSON line per event. */
interface ScanView {
  opened(): void;
  qr(qr: QrImage): Promise<void>;
  notice(notice: AttemptNotice): void;
  outcome(outcome: AttemptOutcome): void;
}

/** The provider rotates its QR about every 20 s; later QRs use the rotation actually seen. */
const PROVIDER_ROTATION_S = 20;
const CLEAR_SCREEN = "\x1b[2J\x1b[H";
const HOW_TO_SCAN = "On the phone: WhatsApp → Settings → Linked devices → Link a device, then point it at the QR.";

const clock = (d: Date) => d.toTimeString().slice(0, 8);

export function describeOutcome(o: AttemptOutcome): string {
  switch (o.kind) {
    case "authorized":
      return `authorized: the instance is linked to phone ${o.phone ? `+${o.phone}` : "(number not reported)"}`;
    case "already_logged":
      return "already logged in: the instance was linked before this scan";
    case "timed_out":
      return "timed out: the scan window passed with no scan";
    case "failed":
      return `failed (${o.reason.replace(/_/g, " ")}): ${maskSecrets(o.message)}`;
    case "cancelled":
      return `cancelled: ${maskSecrets(o.reason)}`;
  }
}

const succeeded = (o: AttemptOutcome) => o.kind === "authorized" || o.kind === "already_logged";

function terminalView(redraw: boolean): ScanView {
  let previous: Date | undefined;
  return {
    opened: () => print(`connected; waiting for the first QR…\n${HOW_TO_SCAN}`),
    async qr(qr) {
      const validS = previous ? Math.max(1, Math.round((qr.receivedAt.getTime() - previous.getTime()) / 1000)) : PROVIDER_ROTATION_S;
      previous = qr.receivedAt;
      const text = qrTextOf(qr.png);
      const art = text === null ? `(this image is not a readable QR code; sha256 ${qr.sha256})` : await terminalQr(text);
      const title = `QR ${qr.number} — received ${clock(qr.receivedAt)}, valid ~${validS} s`;
      print(redraw ? `${CLEAR_SCREEN}${title}\n${art}${HOW_TO_SCAN}` : `${title}\n${art}`);
    },
    notice: () => undefined,
    outcome(o) {
      if (succeeded(o)) print(describeOutcome(o));
      else process.stderr.write(`${describeOutcome(o)}\n`);
    },
  };
}

function outcomeEvent(o: AttemptOutcome): Record<string, unknown> {
  switch (o.kind) {
    case "authorized":
      return { outcome: o.kind, phone: o.phone };
    case "failed":
      return { outcome: o.kind, reason: o.reason, message: maskSecrets(o.message) };
    case "cancelled":
      return { outcome: o.kind, reason: maskSecrets(o.reason) };
    default:
      return { outcome: o.kind };
  }
}

function jsonView(): ScanView {
  const line = (event: string, data: Record<string, unknown> = {}) => printJson({ event, at: new Date(), ...data });
  return {
    opened: () => line("opened"),
    qr: async (qr) => line("qr", { number: qr.number, receivedAt: qr.receivedAt, sha256: qr.sha256, text: qrTextOf(qr.png) }),
    notice: (n) => line("notice", { ...n }),
    outcome: (o) => line("outcome", outcomeEvent(o)),
  };
}

/** Checks the address before anything connects; a bad one is a usage error (exit 2). */
function addressOf(o: ScanOpts): InstanceAddress {
  const apiUrl = parseApiUrl(o.apiUrl);
  const idInstance = parseIdInstance(o.id);
  registerSecret(o.token);
  return parseAddress({ apiUrl, idInstance, token: o.token });
}

export async function runScan(o: ScanOpts): Promise<number> {
  const addr = addressOf({ ...o, token: await secretArg(o.token) });
  const config = cliConfig([]);
  cliLogger(config);
  const view = o.json ? jsonView() : terminalView(process.stdout.isTTY === true);
  const abort = new AbortController();
  const onSigint = () => abort.abort("stopped with Ctrl-C");
  process.once("SIGINT", onSigint);
  try {
    const outcome = await runSocketAttempt({
      connect: connectorFor(addr, { timeoutMs: config.QRFLEET_HTTP_TIMEOUT_MS }),
      onQr: (qr) => view.qr(qr),
      onNotice: (n) => (n.kind === "opened" ? view.opened() : view.notice(n)),
      signal: abort.signal,
      silenceMs: o.silenceMs ?? config.QRFLEET_SILENCE_MS,
      maxMs: o.timeoutMs ?? config.QRFLEET_ATTEMPT_MAX_MS,
      qrMinIntervalMs: config.QRFLEET_QR_MIN_INTERVAL_MS,
      qrFloodFrames: config.QRFLEET_QR_FLOOD_FRAMES,
    });
    view.outcome(outcome);
    return succeeded(outcome) ? EXIT.ok : EXIT.failed;
  } finally {
    process.off("SIGINT", onSigint);
  }
}

const EXIT_CODES = `
Exit codes:
  0  authorized (the phone scanned the QR) or already logged in
  1  timed out, failed (e.g. invalid token, connection lost) or cancelled with Ctrl-C
  2  bad input (apiUrl not a URL, idInstance not digits, unknown option)

This talks to the provider directly and records nothing in the database; use
"qrfleet enqueue" to run a session through the fleet and notify its operators.`;

export function scanCommand(): Command {
  return new Command("scan")
    .description("link one instance now: show its QR in this terminal, as it rotates, until the phone scans it")
    .requiredOption("--api-url <url>", "the instance's apiUrl, e.g. https://7103.api.greenapi.com")
    .requiredOption("--id <idInstance>", "the instance's idInstance (digits)")
    .requiredOption("--token <token>", "the instance's apiTokenInstance (never printed); - reads it from stdin")
    .option("--silence-ms <ms>", "give up when the provider sends nothing for this long (default QRFLEET_SILENCE_MS)", intArg(100, 2 ** 31 - 1))
    .option("--timeout-ms <ms>", "give up after this long in all (default QRFLEET_ATTEMPT_MAX_MS)", intArg(500, 2 ** 31 - 1))
    .option("--json", "print one JSON line per event (opened, qr with its text, outcome) instead of drawing")
    .addHelpText("after", EXIT_CODES)
    .action(async (o: ScanOpts) => {
      process.exitCode = await runScan(o);
    });
}
