import { WebSocket } from "ws";
import { FRAME_TAG_KEYWORD, qrFrame } from "./images.js";
import { withTextChunk } from "./png-text.js";
import type { OpenSocket, SimInstance, SimulatedProvider } from "./provider.js";
import type { Script } from "./script.js";

interface Frame {
  type: string;
  message: unknown;
}

/**
 * One QR websocket session, driven by the script its instance had when it opened.
 * It holds a single timer, set to the earliest of its next rotation, scan, drop or window end,
 * so 10,000 open sessions cost 10,000 timers and nothing more.
 */
export class SimConnection implements OpenSocket {
  private readonly script: Script;
  private readonly startedAt = Date.now();
  private readonly endsAt: number;
  private readonly scanAt: number;
  private readonly dropAt: number;
  private nextRotationAt: number;
  private rotation = 0;
  private timer: NodeJS.Timeout | null = null;
  private ended = false;

  constructor(
    private readonly provider: SimulatedProvider,
    readonly instance: SimInstance,
    private readonly ws: WebSocket,
    /** 1-based connection number of this instance. */
    readonly number: number,
  ) {
    const s = (this.script = instance.script);
    this.endsAt = this.startedAt + s.scanWindowMs;
    const scans = s.fate === "scan" && number >= s.scanOnConnection;
    this.scanAt = scans ? this.startedAt + s.scanAfterMs : Infinity;
    this.dropAt = s.fate === "drop" ? this.startedAt + s.dropAfterMs : Infinity;
    this.nextRotationAt = this.startedAt;
    // The session ends at its terminal frame; the socket counts as open until its close handshake ends.
    ws.on("close", () => {
      provider.sockets.delete(this);
      this.end();
      provider.observe("socketClosed", { idInstance: instance.idInstance, connection: number, at: Date.now() });
    });
    ws.on("error", () => this.end());
    provider.sockets.add(this);
    instance.open.add(this);
    provider.observe("socketOpened", { idInstance: instance.idInstance, connection: number, at: Date.now() });
  }

  start(): void {
    if (this.provider.frozen) return; // opened after freeze(): it stays open and silent
    if (this.instance.state === "authorized") {
      return this.finish({ type: "alreadyLogged", message: "instance account already authorized" });
    }
    switch (this.script.fate) {
      case "provider_error":
        return this.finish({ type: "error", message: this.script.errorMessage });
      case "silence":
        return;
      case "garbage":
        this.sendGarbage();
        break;
      case "unknown_type":
        this.send({ type: this.script.unknownType, message: "simulated frame of an unknown type" });
        break;
      case "flood":
        return this.flood();
      default:
        break;
    }
    this.tick();
  }

  /** The instance was linked while this session was open: the scan's `accountData`. */
  linked(accountData: unknown): void {
    this.finish({ type: "accountData", message: accountData });
  }

  /** See SimulatedProvider.freeze(). */
  freeze(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  /** Destroys the TCP connection without a closing frame: the `drop` fate, and close(). */
  cut(): void {
    this.ws.terminate();
    this.provider.sockets.delete(this);
    this.end();
  }

  private tick(): void {
    this.timer = null;
    if (this.ended || this.provider.frozen) return;
    const now = Date.now();
    if (now >= this.dropAt) {
      this.provider.counters.drops += 1;
      return this.cut();
    }
    if (now >= this.scanAt) {
      this.provider.link(this.instance, this.script.phone);
      if (!this.ended) this.linked(this.provider.accountData(this.instance));
      return;
    }
    if (now >= this.endsAt) {
      this.provider.counters.timeouts += 1;
      return this.finish({ type: "timeout", message: "timeout" });
    }
    if (now >= this.nextRotationAt) this.rotate(now);
    const due = Math.min(this.nextRotationAt, this.endsAt, this.scanAt, this.dropAt);
    this.timer = setTimeout(() => this.tick(), Math.max(0, due - Date.now()));
  }

  private rotate(now: number): void {
    this.rotation += 1;
    // A late timer (a busy loop) shifts the schedule instead of bursting rotations to catch up.
    this.nextRotationAt = Math.max(this.nextRotationAt + this.script.rotationMs, now + 1);
    const request = { idInstance: this.instance.idInstance, connection: this.number, rotation: this.rotation };
    this.provider.images.next(request).then(
      (image) => {
        if (this.ended || this.provider.frozen) return;
        const at = Date.now();
        this.sendRaw(image.frame);
        this.provider.counters.qrFramesSent += 1;
        this.provider.show(this.instance, image, this);
        this.provider.observe("qrFrame", { ...request, sha256: image.sha256, at });
      },
      (err: unknown) => this.provider.log.error({ err }, "simulator could not render a QR image"),
    );
  }

  /**
   * Fate `flood`: one rendered picture, made distinct per frame by a text chunk (rendering 2,000
   * QR codes would take seconds, and a flood is about arrival speed), sent `floodBurst` a turn so
   * the socket's buffer, not the simulator, sets the pace; then the rotation starts as in `never`.
   */
  private flood(): void {
    const request = { idInstance: this.instance.idInstance, connection: this.number, rotation: 0 };
    this.provider.images.next(request).then(
      (image) => this.floodFrom(Buffer.from(image.base64, "base64"), 0),
      (err: unknown) => this.provider.log.error({ err }, "simulator could not render a QR image"),
    );
  }

  private floodFrom(png: Buffer, sent: number): void {
    if (this.ended || this.provider.frozen) return;
    const { floodFrames, floodBurst } = this.script;
    const until = Math.min(floodFrames, sent + floodBurst);
    for (let k = sent + 1; k <= until; k += 1) {
      const tagged = withTextChunk(png, FRAME_TAG_KEYWORD, `${this.instance.idInstance}:${this.number}:flood:${k}`);
      this.sendRaw(qrFrame(tagged.toString("base64")));
    }
    this.provider.counters.qrFramesSent += until - sent;
    this.provider.counters.floodFrames += until - sent;
    if (until < floodFrames) setImmediate(() => this.floodFrom(png, until));
    else this.tick();
  }

  private sendGarbage(): void {
    if (this.script.garbage === "not_json") this.sendRaw(Buffer.from("<html>502 Bad Gateway</html>"));
    else this.sendRaw(qrFrame(Buffer.from("this is not a PNG image").toString("base64")));
  }

  private send(frame: Frame): void {
    this.sendRaw(Buffer.from(JSON.stringify(frame)));
  }

  private sendRaw(data: Buffer): void {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(data, { binary: false });
  }

  private finish(frame: Frame): void {
    if (this.ended) return;
    this.send(frame);
    this.ws.close(1000);
    this.end();
  }

  private end(): void {
    if (this.ended) return;
    this.ended = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.instance.open.delete(this);
    this.provider.hide(this.instance, this);
  }
}
