import { createHash } from "node:crypto";
import { maskSecrets } from "../log.js";
import { GreenApiError, InvalidTokenError, ProviderProtocolError, UnknownInstanceError } from "./errors.js";
import { parseFrame } from "./frames.js";
import type { FailureReason, QrImage, AttemptNotice, AttemptOutcome } from "./types.js";
import { badBound, errorText, failed, emitNotice, SingleOutcome } from "./outcomes.js";

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
   * Each distinct QR image, in frame order. Returning a promise makes the attempt wait for it
   * before the next frame, with the socket paused (backpressure); a rejection ends the attempt
   * by rejecting.
   */
  onQr: (qr: QrImage) => Promise<void> | void;
  /** Non-terminal happenings (for logs and metrics); must not throw, errors are swallowed. */
  onNotice?: (notice: AttemptNotice) => void;
  /** Aborting ends the attempt `cancelled`, also while connecting. */
  signal?: AbortSignal;
  /** No frame for this long ends the attempt failed/silent, in ms. */
  silenceMs: number;
  /** Hard bound on the whole attempt, connect included, in ms. */
  maxMs: number;
}

/**
 * Runs one QR attempt over a websocket to exactly one outcome. Rejects only when onQr rejects
 * (the caller owns that failure); every other ending is a resolved AttemptOutcome.
 */
export function runSocketAttempt(opts: SocketAttemptOptions): Promise<AttemptOutcome> {
  const bad = badBound({ silenceMs: opts.silenceMs, maxMs: opts.maxMs });
  return bad ? Promise.reject(bad) : new SocketAttempt(opts).start();
}

/** A close or error of the socket, queued behind frames so a terminal frame before it wins. */
class SocketEnd {
  constructor(
    readonly reason: FailureReason,
    readonly message: string,
  ) {}
}

type QueueItem = string | Uint8Array | SocketEnd;

// Module-level timer callbacks: an attempt costs no closure per timer or per frame.
function onSilenceTimer(s: SocketAttempt): void {
  s.checkSilence();
}
function onMaxTimer(s: SocketAttempt): void {
  s.finish(failed("too_long", `no outcome within ${s.maxMs} ms`));
}

class SocketAttempt extends SingleOutcome implements QrSocketListener {
  private socket: QrSocket | undefined;
  private readonly connectAbort = new AbortController();
  private silenceTimer: NodeJS.Timeout | undefined;
  private maxTimer: NodeJS.Timeout | undefined;
  private lastFrameAt = 0;
  /** Frames that arrived while onQr was running. */
  private queue: QueueItem[] | undefined;
  private busy = false;
  private seen: Set<string> | undefined;
  private images = 0;

  constructor(private readonly opts: SocketAttemptOptions) {
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
    if (this.done) return;
    this.lastFrameAt = Date.now();
    this.enqueue(data);
  }

  close(code: number, reason: string): void {
    if (this.done) return;
    const why = reason ? `: ${maskSecrets(reason.slice(0, 200))}` : "";
    this.enqueue(new SocketEnd("connection_lost", `socket closed (code ${code}${why}) without a terminal message`));
  }

  error(err: Error): void {
    if (this.done) return;
    const protocol = err instanceof ProviderProtocolError;
    this.enqueue(new SocketEnd(protocol ? "protocol_error" : "connection_lost", `socket error: ${maskSecrets(err.message)}`));
  }

  checkSilence(): void {
    if (this.done) return;
    // While the socket is paused for our own backpressure, no frame can arrive: not silence.
    const idle = this.busy ? 0 : Date.now() - this.lastFrameAt;
    if (idle >= this.opts.silenceMs) {
      this.finish(failed("silent", `no frame for ${this.opts.silenceMs} ms`));
    } else {
      this.silenceTimer = setTimeout(onSilenceTimer, this.opts.silenceMs - idle, this);
    }
  }

  protected release(): void {
    clearTimeout(this.maxTimer);
    clearTimeout(this.silenceTimer);
    this.queue = undefined;
    if (this.socket) closeQuietly(this.socket);
    else this.connectAbort.abort("the attempt is over");
  }

  private opened(socket: QrSocket): void {
    if (this.done) {
      closeQuietly(socket);
      return;
    }
    this.socket = socket;
    this.lastFrameAt = Date.now();
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

  private enqueue(item: QueueItem): void {
    if (this.busy) (this.queue ??= []).push(item);
    else this.process(item);
  }

  private process(item: QueueItem): void {
    const pending = this.handle(item);
    if (!pending) return;
    this.busy = true;
    this.socket?.pause?.();
    pending.then(
      () => this.drain(),
      (err: unknown) => this.fail(err),
    );
  }

  private drain(): void {
    this.busy = false;
    if (this.socket?.resume && !this.done) {
      this.socket.resume();
      // No frame could arrive while paused: that wait was ours, not the provider's silence.
      this.lastFrameAt = Date.now();
    }
    const queue = this.queue;
    while (queue && !this.done && !this.busy && queue.length > 0) this.process(queue.shift()!);
  }

  /** Returns the onQr promise when a new image was handed over, else nothing. */
  private handle(item: QueueItem): Promise<void> | undefined {
    if (item instanceof SocketEnd) {
      this.finish(failed(item.reason, item.message));
      return undefined;
    }
    const frame = parseFrame(item);
    switch (frame.type) {
      case "qrCode":
        return this.deliverQr(frame.png);
      case "accountData":
        this.finish({ kind: "authorized", accountData: frame.raw, phone: frame.phone });
        return undefined;
      case "alreadyLogged":
        this.finish({ kind: "already_logged" });
        return undefined;
      case "timeout":
        this.finish({ kind: "timed_out" });
        return undefined;
      case "error":
        this.finish(failed("provider_error", `provider error frame: ${maskSecrets(frame.message)}`));
        return undefined;
      case "protocolError":
        this.finish(failed("protocol_error", frame.reason));
        return undefined;
      case "unknown":
        this.notice({ kind: "unknown_type", type: frame.wireType });
        return undefined;
    }
  }

  private deliverQr(png: Buffer): Promise<void> | undefined {
    const sha256 = createHash("sha256").update(png).digest("hex");
    this.seen ??= new Set();
    if (this.seen.has(sha256)) {
      this.notice({ kind: "duplicate_qr", sha256 });
      return undefined;
    }
    this.seen.add(sha256);
    const image: QrImage = { png, sha256, number: ++this.images, receivedAt: new Date() };
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
