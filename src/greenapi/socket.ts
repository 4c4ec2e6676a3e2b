import { isIP } from "node:net";
import type { IncomingMessage } from "node:http";
import WebSocket, { type RawData } from "ws";
import { maskSecrets } from "../log.js";
import { bareHost, checkedAddress, guardedLookup, type OutboundPolicy } from "../outbound-guard.js";
import { retryAfterMs } from "../lib/retry-after.js";
import { describeCause, errorForStatus, ProviderProtocolError, ProviderRateLimitedError, ProviderUnavailableError } from "./errors.js";
import { MAX_FRAME_BYTES } from "./frames.js";
import { rateLimitFallbackMs, waitFor } from "./pace.js";
import type { QrSocket, QrSocketListener } from "./socket-attempt.js";
import type { InstanceAddress } from "./types.js";
import { qrSocketUrl } from "./urls.js";

export interface QrSocketOptions {
  /** Bound on TCP connect plus upgrade, in ms. */
  timeoutMs: number;
  signal?: AbortSignal;
  /** Largest frame accepted, in bytes; a larger one ends the socket with a protocol error. Default: 1 MiB */
  maxPayload?: number;
  /** An upgrade answered 429 is retried after its Retry-After this many times in a row. Default: 3 */
  rateLimitRetries?: number;
  /** The longest Retry-After taken as the provider says it, in ms. Default: 60000 */
  retryAfterMaxMs?: number;
  /** Where the socket may connect, judged by the address it resolves to. Default: anywhere */
  outbound?: OutboundPolicy;
}

/** What a 429 on the upgrade waits when it names no Retry-After (doubling from 1 s in a row). */
type UpgradeOptions = QrSocketOptions & { rateLimitFallbackMs?: number };

/**
 * Opens the provider's QR websocket. Rejects with InvalidTokenError (401/403),
 * UnknownInstanceError (404), ProviderRateLimitedError (429, with the wait it asked for),
 * ProviderUnavailableError (5xx, timeout, network) or the signal's reason when aborted. Error
 * messages carry the masked URL only.
 */
export function openQrSocket(addr: InstanceAddress, opts: UpgradeOptions): Promise<QrSocket> {
  const url = qrSocketUrl(addr);
  const what = `websocket ${maskSecrets(url)}`;
  const { signal } = opts;
  if (signal?.aborted) return Promise.reject(signal.reason);
  const { outbound } = opts;
  // A name is checked as it resolves (the lookup below); an address in the URL itself, here.
  const host = bareHost(new URL(url).hostname);
  const checked = outbound && isIP(host) ? checkedAddress(host, outbound) : Promise.resolve();
  return checked.then(() => open(url, what, opts), (err: Error) => Promise.reject(new ProviderUnavailableError(`${what} refused: ${err.message}`)));
}

function open(url: string, what: string, opts: UpgradeOptions): Promise<QrSocket> {
  const { signal, outbound } = opts;
  return new Promise<QrSocket>((resolve, reject) => {
    // Compression is off: a zlib context per socket is real memory at 10,000 sessions,
    // and QR frames are base64 PNGs that barely compress.
    const ws = new WebSocket(url, {
      handshakeTimeout: opts.timeoutMs,
      maxPayload: opts.maxPayload ?? MAX_FRAME_BYTES,
      perMessageDeflate: false,
      followRedirects: false,
      ...(outbound && { lookup: guardedLookup(outbound) }),
    });
    let settled = false;
    const settle = (err: unknown, socket?: QrSocket) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
      ws.off("unexpected-response", onUnexpected);
      ws.off("open", onOpen);
      if (socket) {
        resolve(socket);
      } else {
        ws.terminate();
        reject(err);
      }
    };
    // ws's handshakeTimeout starts once TCP is connected; this also bounds the connect.
    const timer = setTimeout(
      () => settle(new ProviderUnavailableError(`${what}: no upgrade within ${opts.timeoutMs} ms`)),
      opts.timeoutMs,
    );
    const onAbort = () => settle(signal?.reason);
    const onUnexpected = (_req: unknown, res: IncomingMessage) => {
      res.resume();
      settle(upgradeRefused(res, `${what} upgrade`, opts));
    };
    const onOpen = () => settle(undefined, new WsQrSocket(ws));
    // Stays attached for the socket's life: ws throws on an 'error' nobody listens to.
    ws.on("error", (err: Error) => {
      if (!settled) settle(connectError(err, what, opts.timeoutMs));
    });
    ws.on("unexpected-response", onUnexpected);
    ws.once("open", onOpen);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

function upgradeRefused(res: IncomingMessage, what: string, opts: UpgradeOptions) {
  const status = res.statusCode ?? 0;
  if (status !== 429) return errorForStatus(status, what);
  const maxMs = opts.retryAfterMaxMs ?? 60_000;
  const waitMs = retryAfterMs(res.headers["retry-after"], new Date(), maxMs) ?? opts.rateLimitFallbackMs ?? rateLimitFallbackMs(0, maxMs);
  return new ProviderRateLimitedError(`${what} answered HTTP 429 (too many requests)`, waitMs);
}

/**
 * The `connect` function runSocketAttempt wants, bound to one instance. A 429 on the upgrade is
 * the provider asking for time: its Retry-After is waited out (within the attempt's own bounds,
 * which abort the signal) and the upgrade goes again, as REST calls do.
 */
export function connectorFor(
  addr: InstanceAddress,
  opts: Omit<QrSocketOptions, "signal">,
): (signal: AbortSignal) => Promise<QrSocket> {
  const retries = opts.rateLimitRetries ?? 3;
  const maxMs = opts.retryAfterMaxMs ?? 60_000;
  return async (signal) => {
    for (let retry = 0; ; retry++) {
      try {
        return await openQrSocket(addr, { ...opts, signal, rateLimitFallbackMs: rateLimitFallbackMs(retry, maxMs) });
      } catch (err) {
        if (!(err instanceof ProviderRateLimitedError) || retry >= retries) throw err;
        await waitFor(err.retryAfterMs, signal);
      }
    }
  };
}

function connectError(err: Error, what: string, timeoutMs: number): ProviderUnavailableError {
  if (/handshake has timed out/i.test(err.message)) {
    return new ProviderUnavailableError(`${what}: no upgrade within ${timeoutMs} ms`);
  }
  return new ProviderUnavailableError(`${what}: connect failed (${describeCause(err)})`);
}

type Pending = { kind: "message"; data: string | Uint8Array } | { kind: "close"; code: number; reason: string } | { kind: "error"; err: Error };

/** Adapts a ws WebSocket to QrSocket, holding events until the attempt listens. */
class WsQrSocket implements QrSocket {
  private listener: QrSocketListener | undefined;
  private pending: Pending[] | undefined = [];

  constructor(private readonly ws: WebSocket) {
    ws.on("message", (data: RawData, isBinary: boolean) => {
      const bytes = toBuffer(data);
      const frame = isBinary ? bytes : bytes.toString("utf8");
      if (this.listener) this.listener.message(frame);
      else this.hold({ kind: "message", data: frame });
    });
    ws.on("close", (code: number, reason: Buffer) => this.hold({ kind: "close", code, reason: reason.toString("utf8") }));
    ws.on("error", (err: Error) => this.hold({ kind: "error", err: socketError(err) }));
  }

  listen(listener: QrSocketListener): void {
    this.listener = listener;
    const pending = this.pending ?? [];
    this.pending = undefined;
    for (const event of pending) this.deliver(event);
  }

  pause(): void {
    this.ws.pause();
  }

  resume(): void {
    this.ws.resume();
  }

  close(): void {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.close(1000);
    else if (this.ws.readyState !== WebSocket.CLOSED) this.ws.terminate();
  }

  /** Queues the event until listen(), or delivers it at once after. */
  private hold(event: Pending): void {
    if (this.pending) this.pending.push(event);
    else this.deliver(event);
  }

  private deliver(event: Pending): void {
    const l = this.listener;
    if (!l) return;
    if (event.kind === "message") l.message(event.data);
    else if (event.kind === "close") l.close(event.code, event.reason);
    else l.error(event.err);
  }
}

function toBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}

/** ws reports a peer that breaks the websocket protocol (or maxPayload) with WS_ERR_* codes. */
function socketError(err: Error): Error {
  const code = (err as { code?: unknown }).code;
  if (code === "WS_ERR_UNSUPPORTED_MESSAGE_LENGTH") return new ProviderProtocolError(`frame too large (${maskSecrets(err.message)})`);
  if (typeof code === "string" && code.startsWith("WS_ERR_")) return new ProviderProtocolError(maskSecrets(err.message));
  return new ProviderUnavailableError(`websocket error (${describeCause(err)})`);
}
