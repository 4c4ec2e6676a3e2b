import { createHash } from "node:crypto";
import { maskSecrets } from "../log.js";
import { GreenApiError, InvalidTokenError, ProviderProtocolError, UnknownInstanceError } from "./errors.js";
import { parseFrame } from "./frames.js";
import { storableText } from "./wire-text.js";
import type { QrImage, AttemptNotice, AttemptOutcome } from "./types.js";
import { badBound, errorText, failed, emitNotice, outcomeOfFrame, SingleOutcome } from "./outcomes.js";

/** What the attempt engine needs from a QR websocket; the real one is in socket.ts. */
export interface QrSocketListener {
  /** A text frame as a string, a binary frame as bytes. */
  message(data: string | Uint8Array): void;
  close(code: number, reason: string): void;
  /** A ProviderProtocolError means the peer broke the protocol (e.g. a frame over maxPayload). */
  error(err: Error): void;
}

export interface QrSocket {
  /** Called once; events that arrived before it are delivered then, in order. */
  listen(listener: QrSocketListener): void;
  /** Idempotent. */
  close(): void;
  /** Stops reading frames (TCP then pushes back on the sender) until resume(). */
  pause?(): void;
  resume?(): void;
}

export interface SocketAttemptOptions {
  /** Opens the socket; rejects with a GreenApiError (InvalidTokenError, …) when the upgrade fails. */
  connect: (signal: AbortSignal) => Promise<QrSocket>;
  /**
   * Each distinct QR image, in frame order, at most one per `qrMinIntervalMs`. Returning a promise
   * makes the attempt wait for it with the socket paused (backpressure); QR frames that arrive
   * meanwhile are coalesced to the newest. A rejection ends the attempt by rejecting.
   */
  onQr: (qr: QrImage) => Promise<void> | void;
  /** Non-terminal happenings (for logs and metrics); must not throw, errors are swallowed. */
  onNotice?: (notice: AttemptNotice) => void;
  /** Aborting ends the attempt `cancelled`, also while connecting. */
  signal?: AbortSignal;
  /** No frame for this long ends the attempt failed/silent, in ms; frames still held in memory are not silence. */
  silenceMs: number;
  /** Hard bound on the whole attempt, connect included, in ms. */
  maxMs: number;
  /**
   * At most one QR is handed over per this many ms; a QR frame that comes sooner waits for the
   * interval, and is dropped if a newer one comes before it is due. 0: no bound but onQr's own pace.
   * @defaultValue 0
   */
  qrMinIntervalMs?: number;
  /**
   * With a qrMinIntervalMs, QR frames the socket may send beyond one per interval (counted from
   * the open) before the attempt ends failed/qr_flood. @defaultValue 50
   */
  qrFloodFrames?: number;
}

/**
 * Runs one QR attempt over a websocket to exactly one outcome. Rejects only when onQr rejects
 * (the caller owns that failure); every other ending is a resolved AttemptOutcome.
 */
export function runSocketAttempt(opts: SocketAttemptOptions): Promise<AttemptOutcome> {
  const bad = badBound({ silenceMs: opts.silenceMs, maxMs: opts.maxMs });
  const interval = opts.qrMinIntervalMs ?? 0;
  const flood = opts.qrFloodFrames ?? DEFAULT_FLOOD_FRAMES;
  if (bad) return Promise.reject(bad);
  if (!(interval >= 0 && interval <= MAX_INTERVAL_MS) || !Number.isInteger(flood) || flood < 1) {
    return Promise.reject(new RangeError(`qrMinIntervalMs must be 0 to ${MAX_INTERVAL_MS} ms and qrFloodFrames a positive integer`));
  }
  return new SocketAttempt(opts, interval, flood).start();
}

const DEFAULT_FLOOD_FRAMES = 50;
const MAX_INTERVAL_MS = 3_600_000;

// Module-level timer callbacks: an attempt costs no closure per timer or per frame.
function onSilenceTimer(s: SocketAttempt): void {
  s.checkSilence();
}
function onMaxTimer(s: SocketAttempt): void {
  s.finish(failed("too_long", `no outcome within ${s.maxMs} ms`));
}
function onQrDue(s: SocketAttempt): void {
  s.qrDue();
}

/**
 * Per frame the attempt keeps O(1) state whatever the provider sends: the newest QR not yet handed
 * over (`held`), the first ending seen while onQr runs (`ending`), counters, and one timer of each
 * kind at a time. A flood costs a JSON parse and a base64 decode per frame and nothing more: a QR
 * that is overtaken is neither hashed nor kept.
 */
class SocketAttempt extends SingleOutcome implements QrSocketListener {
  private socket: QrSocket | undefined;
  private readonly connectAbort = new AbortController();
  private silenceTimer: NodeJS.Timeout | undefined;
  private maxTimer: NodeJS.Timeout | undefined;
  private qrTimer: NodeJS.Timeout | undefined;
  private lastFrameAt = 0;
  private openedAt = 0;
  /** True while an onQr promise runs (the socket is paused). */
  private busy = false;
  /** The newest QR frame's image not handed over yet. */
  private held: Buffer | undefined;
  /** How the attempt ends once onQr has settled: the first terminal frame, close or error. */
  private ending: AttemptOutcome | undefined;
  private lastQrAt = -Infinity;
  private qrFrames = 0;
  private dropped = 0;
  /** sha256 of images handed over: at most one per interval, so bounded by the attempt's length. */
  private seen: Set<string> | undefined;
  private images = 0;

  constructor(
    private readonly opts: SocketAttemptOptions,
    private readonly intervalMs: number,
    private readonly floodFrames: number,
  ) {
    super();
  }

  get maxMs(): number {
    return this.opts.maxMs;
  }

  start(): Promise<AttemptOutcome> {
    const promise = this.outcome(this.opts.signal);
    if (this.done) return promise;
    this.maxTimer = setTimeout(onMaxTimer, this.opts.maxMs, this);
    let connecting: Promise<QrSocket>;
    try {
      connecting = this.opts.connect(this.connectAbort.signal);
    } catch (err) {
      this.connectFailed(err);
      return promise;
    }
    connecting.then(
      (socket) => this.opened(socket),
      (err: unknown) => this.connectFailed(err),
    );
    return promise;
  }

  message(data: string | Uint8Array): void {
    if (this.done || this.ending) return;
    const now = Date.now();
    this.lastFrameAt = now;
    const frame = parseFrame(data);
    if (frame.type === "qrCode") this.qrArrived(frame.png, now);
    else if (frame.type === "unknown") this.notice({ kind: "unknown_type", type: frame.wireType });
    else this.endWhenSettled(outcomeOfFrame(frame));
  }

  close(code: number, reason: string): void {
    if (this.done || this.ending) return;
    const why = reason ? `: ${maskSecrets(storableText(reason, 200))}` : "";
    this.endWhenSettled(failed("connection_lost", `socket closed (code ${code}${why}) without a terminal message`));
  }

  error(err: Error): void {
    if (this.done || this.ending) return;
    const protocol = err instanceof ProviderProtocolError;
    this.endWhenSettled(failed(protocol ? "protocol_error" : "connection_lost", `socket error: ${maskSecrets(err.message)}`));
  }

  checkSilence(): void {
    if (this.done) return;
    // A paused socket (our backpressure) cannot send, and a held frame or ending is not silence.
    const pending = this.busy || this.held !== undefined || this.ending !== undefined;
    const idle = pending ? 0 : Date.now() - this.lastFrameAt;
    if (idle >= this.opts.silenceMs) {
      this.finish(failed("silent", `no frame for ${this.opts.silenceMs} ms`));
    } else {
      this.silenceTimer = setTimeout(onSilenceTimer, this.opts.silenceMs - idle, this);
    }
  }

  qrDue(): void {
    this.qrTimer = undefined;
    this.pump();
  }

  protected release(): void {
    clearTimeout(this.maxTimer);
    clearTimeout(this.silenceTimer);
    clearTimeout(this.qrTimer);
    const dropped = this.dropped + (this.held ? 1 : 0);
    this.held = undefined;
    if (this.socket) closeQuietly(this.socket);
    else this.connectAbort.abort("the attempt is over");
    if (dropped > 0) this.notice({ kind: "qr_dropped", count: dropped });
  }

  private opened(socket: QrSocket): void {
    if (this.done) {
      closeQuietly(socket);
      return;
    }
    this.socket = socket;
    this.openedAt = this.lastFrameAt = Date.now();
    this.silenceTimer = setTimeout(onSilenceTimer, this.opts.silenceMs, this);
    this.notice({ kind: "opened" });
    if (this.done) return;
    try {
      socket.listen(this);
    } catch (err) {
      this.finish(failed("connection_lost", `socket listen failed: ${errorText(err)}`));
    }
  }

  private connectFailed(err: unknown): void {
    if (this.done) return;
    const text = errorText(err);
    if (err instanceof InvalidTokenError) this.finish(failed("invalid_token", text));
    else if (err instanceof UnknownInstanceError) this.finish(failed("unknown_instance", text));
    else if (err instanceof GreenApiError && err.status !== undefined) this.finish(failed("provider_error", text));
    else this.finish(failed("connection_lost", `could not connect: ${text}`));
  }

  /** Ends the attempt now, or, while onQr runs, once it has settled: a terminal frame waits its turn. */
  private endWhenSettled(outcome: AttemptOutcome): void {
    if (this.busy) this.ending ??= outcome;
    else this.finish(outcome);
  }

  private qrArrived(png: Buffer, now: number): void {
    this.qrFrames += 1;
    if (this.intervalMs > 0 && this.qrFrames > this.floodFrames + (now - this.openedAt) / this.intervalMs) {
      const message = `the provider sent ${this.qrFrames} QR codes in ${now - this.openedAt} ms, faster than it can rotate them`;
      this.endWhenSettled(failed("qr_flood", `${message} (at most one per ${this.intervalMs} ms is shown)`));
      return;
    }
    if (this.held) this.dropped += 1;
    this.held = png;
    this.pump();
  }

  /** Hands the held QR over if nothing runs and its interval allows; else makes sure one timer will. */
  private pump(): void {
    if (this.done || this.busy || !this.held) return;
    const wait = this.lastQrAt + this.intervalMs - Date.now();
    if (wait > 0) {
      this.qrTimer ??= setTimeout(onQrDue, wait, this);
      return;
    }
    const png = this.held;
    this.held = undefined;
    const pending = this.deliverQr(png);
    if (!pending) return;
    this.busy = true;
    this.socket?.pause?.();
    pending.then(
      () => this.qrSettled(),
      (err: unknown) => this.fail(err),
    );
  }

  private qrSettled(): void {
    this.busy = false;
    if (this.done) return;
    if (this.socket?.resume) {
      this.socket.resume();
      // No frame could arrive while paused: that wait was ours, not the provider's silence.
      this.lastFrameAt = Date.now();
    }
    // A QR that is due goes out before a pending ending; one that must wait for its interval is dropped.
    if (this.ending && this.held && this.lastQrAt + this.intervalMs > Date.now()) return this.finish(this.ending);
    this.pump();
    if (this.ending && !this.busy) this.finish(this.ending);
  }

  /** Returns the onQr promise when a new image was handed over, else nothing. */
  private deliverQr(png: Buffer): Promise<void> | undefined {
    const sha256 = createHash("sha256").update(png).digest("hex");
    this.seen ??= new Set();
    if (this.seen.has(sha256)) {
      this.notice({ kind: "duplicate_qr", sha256 });
      return undefined;
    }
    this.seen.add(sha256);
    const receivedAt = new Date();
    this.lastQrAt = receivedAt.getTime();
    const image: QrImage = { png, sha256, number: ++this.images, receivedAt };
    try {
      return this.opts.onQr(image) ?? undefined;
    } catch (err) {
      return Promise.reject(err);
    }
  }

  private notice(notice: AttemptNotice): void {
    emitNotice(this.opts.onNotice, notice);
  }
}

function closeQuietly(socket: QrSocket): void {
  try {
    socket.close();
  } catch {
    // already closed or broken: nothing left to release
  }
}
