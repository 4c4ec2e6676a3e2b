import { createHash } from "node:crypto";
import { maskSecrets } from "../log.js";
import { GreenApiError, InvalidTokenError, UnknownInstanceError } from "./errors.js";
import type { GreenApiClient, RestQr } from "./rest.js";
import type { QrImage, AttemptNotice, AttemptOutcome } from "./types.js";
import { badBound, errorText, failed, emitNotice, SingleOutcome } from "./outcomes.js";

/**
 * A QR attempt over REST polling, the per-instance fallback to the websocket: the provider's `qr`
 * call answers one snapshot at a time, at most three calls a second. Same contract as runSocketAttempt: exactly one outcome, a rejection only when
 * onQr rejects.
 */
export interface RestAttemptOptions {
  /** Its calls get the attempt's own signal, so a cancel also aborts a request in flight. */
  client: Pick<GreenApiClient, "qr" | "getStateInstance">;
  /** Each distinct QR image, in poll order; a returned promise is awaited; a rejection ends the attempt by rejecting. */
  onQr: (qr: QrImage) => Promise<void> | void;
  /** Non-terminal happenings (for logs and metrics); must not throw, errors are swallowed. */
  onNotice?: (notice: AttemptNotice) => void;
  /** Aborting ends the attempt `cancelled`, also while a request is in flight. */
  signal?: AbortSignal;
  /** Time from the start of one `qr` call to the start of the next, in ms; calls never overlap. @defaultValue 1000 */
  pollMs?: number;
  /**
   * The scan window, in ms from the first poll: no scan within it ends the attempt `timed_out`.
   * The websocket gets this from the provider's `timeout` frame; REST has none, so we keep it.
   */
  windowMs: number;
  /** No successful answer for this long (only errors, or a hanging call) ends it failed/silent, in ms. */
  silenceMs: number;
  /** Hard bound on the whole attempt, in ms. */
  maxMs: number;
}

const DEFAULT_POLL_MS = 1000;

/**
 * Polls the REST `qr` call to exactly one outcome. `alreadyLogged` before any QR means the
 * instance was linked already; after one, that the phone scanned it: `authorized`, with the
 * phone unknown (REST never reports the number, so an expected phone cannot be checked).
 */
export function runRestAttempt(opts: RestAttemptOptions): Promise<AttemptOutcome> {
  const bounds = { pollMs: opts.pollMs ?? DEFAULT_POLL_MS, windowMs: opts.windowMs, silenceMs: opts.silenceMs, maxMs: opts.maxMs };
  const bad = badBound(bounds);
  return bad ? Promise.reject(bad) : new RestAttempt(opts, bounds.pollMs).start();
}

class RestAttempt extends SingleOutcome {
  /** Aborted when the attempt ends, whatever ends it: the call in flight stops with it. */
  private readonly calls = new AbortController();
  private pollTimer: NodeJS.Timeout | undefined;
  private windowTimer: NodeJS.Timeout | undefined;
  private maxTimer: NodeJS.Timeout | undefined;
  private silenceTimer: NodeJS.Timeout | undefined;
  private lastAnswerAt = 0;
  private lastError = "";
  /** The first successful answer is this attempt's "opened", as the socket's upgrade is. */
  private answered = false;
  /** True while onQr runs: the attempt waits for it, so that wait is not the provider's silence. */
  private delivering = false;
  private readonly seen = new Set<string>();
  private images = 0;

  constructor(
    private readonly opts: RestAttemptOptions,
    private readonly pollMs: number,
  ) {
    super();
  }

  start(): Promise<AttemptOutcome> {
    const promise = this.outcome(this.opts.signal);
    if (this.done) return promise;
    this.lastAnswerAt = Date.now();
    this.maxTimer = setTimeout(() => this.finish(failed("too_long", `no outcome within ${this.opts.maxMs} ms`)), this.opts.maxMs);
    this.windowTimer = setTimeout(() => this.finish({ kind: "timed_out" }), this.opts.windowMs);
    this.silenceTimer = setTimeout(() => this.checkSilence(), this.opts.silenceMs);
    void this.poll();
    return promise;
  }

  private async poll(): Promise<void> {
    this.pollTimer = undefined;
    if (this.done) return;
    const startedAt = Date.now();
    let answer: RestQr;
    try {
      answer = await this.opts.client.qr(this.calls.signal);
    } catch (err) {
      if (!this.done) this.callFailed(err, startedAt);
      return;
    }
    if (this.done) return;
    if (!this.answered) {
      this.answered = true;
      this.notice({ kind: "opened" });
    }
    this.lastAnswerAt = Date.now();
    this.lastError = "";
    switch (answer.type) {
      case "qrCode":
        if (await this.deliverQr(answer.png)) this.next(startedAt);
        return;
      case "alreadyLogged":
        if (this.images === 0) this.finish({ kind: "already_logged" });
        else await this.scanned();
        return;
      case "error":
        this.finish(failed("provider_error", `provider error answer: ${maskSecrets(answer.message)}`));
        return;
    }
  }

  private callFailed(err: unknown, startedAt: number): void {
    const text = errorText(err);
    if (err instanceof InvalidTokenError) return this.finish(failed("invalid_token", text));
    if (err instanceof UnknownInstanceError) return this.finish(failed("unknown_instance", text));
    // 5xx, timeouts, network errors and malformed answers: the next poll may succeed; silenceMs bounds the wait.
    this.lastError = text;
    this.notice({ kind: "poll_failed", reason: err instanceof GreenApiError ? `${err.code}: ${text}` : text });
    this.next(startedAt);
  }

  private next(startedAt: number): void {
    if (this.done) return;
    const wait = Math.max(0, this.pollMs - (Date.now() - startedAt));
    this.pollTimer = setTimeout(() => void this.poll(), wait);
  }

  /** Hands a new image to onQr; false when the attempt ended meanwhile (or onQr rejected it). */
  private async deliverQr(png: Buffer): Promise<boolean> {
    const sha256 = createHash("sha256").update(png).digest("hex");
    // Every poll between two rotations sees the same image again: that is not worth a notice here.
    if (this.seen.has(sha256)) return true;
    this.seen.add(sha256);
    const image: QrImage = { png, sha256, number: ++this.images, receivedAt: new Date() };
    this.delivering = true;
    try {
      await this.opts.onQr(image);
    } catch (err) {
      this.fail(err);
      return false;
    } finally {
      this.delivering = false;
      this.lastAnswerAt = Date.now();
    }
    return !this.done;
  }

  /** The phone scanned: neither the window nor silence may overtake the confirmation call. */
  private async scanned(): Promise<void> {
    clearTimeout(this.windowTimer);
    clearTimeout(this.silenceTimer);
    let accountData: unknown = null;
    try {
      // REST has no accountData frame; the instance's state is all it can tell. Bounded by the
      // client's timeout, maxMs and the signal; a failure does not undo the scan.
      const { raw } = await this.opts.client.getStateInstance(this.calls.signal);
      accountData = { stateInstance: raw };
    } catch {
      // the scan happened whatever this call says
    }
    this.finish({ kind: "authorized", accountData, phone: null });
  }

  private checkSilence(): void {
    if (this.done) return;
    const idle = Date.now() - this.lastAnswerAt;
    if (this.delivering || idle < this.opts.silenceMs) {
      this.silenceTimer = setTimeout(() => this.checkSilence(), this.delivering ? this.opts.silenceMs : this.opts.silenceMs - idle);
      return;
    }
    const last = this.lastError ? ` (last error: ${this.lastError})` : "";
    this.finish(failed("silent", `no answer from the qr call for ${this.opts.silenceMs} ms${last}`));
  }

  protected release(): void {
    clearTimeout(this.pollTimer);
    clearTimeout(this.windowTimer);
    clearTimeout(this.maxTimer);
    clearTimeout(this.silenceTimer);
    this.calls.abort();
  }

  private notice(notice: AttemptNotice): void {
    emitNotice(this.opts.onNotice, notice);
  }
}

