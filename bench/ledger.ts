import { summarize, type LatencySummary } from "./percentiles.js";

/**
 * What the provider sent in one phase, and what reached the operators: every QR frame by its
 * sha256, matched against every webhook and email. It lives in the process that holds the
 * simulator, the webhook receiver and the SMTP sink, so send and receive times come from one clock.
 *
 * At 2,000 sessions rotating every second for 90 s that is 180,000 frames, so a frame is a key
 * of 16 hex digits (64 bits of the sha256: no collision to expect below billions) and three array
 * slots, not an object.
 */

export interface SentFrame {
  idInstance: string;
  connection: number;
  sha256: string;
  at: number;
}

export interface WebhookArrival {
  webhookId: string;
  type: string;
  /** qr.updated: the sha256 of the PNG in data.qr; null when it carried none. */
  pngSha256: string | null;
  at: number;
}

export interface LedgerResult {
  sent: number;
  /** Distinct frames whose exact image reached the webhook receiver. */
  delivered: number;
  /** Not delivered, but a later frame of the same instance was: the newest QR won, as designed under overload. */
  superseded: number;
  /** Not delivered, and nothing newer of that instance was either. */
  lost: number;
  /** A webhook-id, or a frame, seen a second time. */
  duplicated: number;
  invalidSignatures: number;
  /** qr.updated webhooks whose image the simulator never sent (or that carried no image). */
  unmatched: number;
  /** Webhooks of every other type, by type (session.timed_out, …). */
  otherEvents: Record<string, number>;
  latencyMs: LatencySummary;
  emails: number;
  /** A second email for one connection of one instance. */
  emailDuplicates: number;
  /** Emails that named no instance of this phase. */
  emailUnmatched: number;
  /** Digests and fleet incidents: counted in `emails`, matched to no instance. */
  emailsAboutTheFleet: number;
  emailLatencyMs: LatencySummary;
  socketsOpenMax: number;
  /** Date.now() when every instance had a socket open at once; null if that never happened. */
  allOpenAt: number | null;
}

const frameKey = (sha256Hex: string) => sha256Hex.slice(0, 16);
const HEADER = /^x-qrfleet-instance:[ \t]*(\d+)/im;
/** A digest or a fleet incident: about many instances, so it times none. */
const ABOUT_THE_FLEET = /^x-qrfleet-event:[ \t]*(digest|fleet\.)/im;

export class DeliveryLedger {
  private readonly indexOf = new Map<string, number>();
  private readonly frames = new Map<string, number>();
  private readonly frameInstance: number[] = [];
  private readonly frameSentAt: number[] = [];
  private readonly frameDelivered: number[] = [];
  /** Per instance: its latest connection, and when that connection's first frame was sent (NaN before). */
  private readonly connection: Int32Array;
  private readonly connectionFirstFrameAt: Float64Array;
  /** Per instance: when its first QR reached the receiver (NaN before). */
  private readonly firstDeliveryAt: Float64Array;
  private readonly webhookIds = new Set<string>();
  private readonly emailed = new Set<string>();
  private readonly latencies: number[] = [];
  private readonly emailLatencies: number[] = [];
  private readonly otherEvents: Record<string, number> = {};
  private delivered = 0;
  private duplicated = 0;
  private unmatched = 0;
  private emailDuplicates = 0;
  private emailsAboutTheFleet = 0;
  private emailUnmatched = 0;
  private openMax = 0;
  private allOpenAt: number | null = null;
  /** Sockets open now, webhooks and emails received so far: the progress line's figures. */
  open = 0;
  webhooks = 0;
  emails = 0;
  invalidSignatures = 0;
  /** Date.now() of the last webhook or email; the drain waits for this to go quiet. */
  lastArrivalAt = 0;

  constructor(idInstances: readonly string[]) {
    idInstances.forEach((id, i) => this.indexOf.set(id, i));
    this.connection = new Int32Array(idInstances.length);
    this.connectionFirstFrameAt = new Float64Array(idInstances.length).fill(NaN);
    this.firstDeliveryAt = new Float64Array(idInstances.length).fill(NaN);
  }

  get sent(): number {
    return this.frameSentAt.length;
  }

  get size(): number {
    return this.indexOf.size;
  }

  /** The instance's position in the list the ledger was made with; undefined if it is not one of the phase's. */
  instanceIndex(idInstance: string): number | undefined {
    return this.indexOf.get(idInstance);
  }

  /** Date.now() when the instance's first QR reached the receiver; NaN if none did. */
  firstDelivery(index: number): number {
    return this.firstDeliveryAt[index] ?? NaN;
  }

  socketOpened(idInstance: string, connection: number): void {
    const i = this.indexOf.get(idInstance);
    if (i === undefined) return;
    this.connection[i] = connection;
    this.connectionFirstFrameAt[i] = NaN;
    this.open += 1;
    this.openMax = Math.max(this.openMax, this.open);
    if (this.allOpenAt === null && this.open >= this.indexOf.size) this.allOpenAt = Date.now();
  }

  socketClosed(idInstance: string): void {
    if (this.indexOf.has(idInstance)) this.open -= 1;
  }

  frameSent(frame: SentFrame): void {
    const i = this.indexOf.get(frame.idInstance);
    if (i === undefined) return;
    this.frames.set(frameKey(frame.sha256), this.frameSentAt.length);
    this.frameInstance.push(i);
    this.frameSentAt.push(frame.at);
    this.frameDelivered.push(0);
    if (frame.connection === this.connection[i] && Number.isNaN(this.connectionFirstFrameAt[i]!)) {
      this.connectionFirstFrameAt[i] = frame.at;
    }
  }

  webhook(w: WebhookArrival): void {
    this.webhooks += 1;
    this.lastArrivalAt = w.at;
    if (this.webhookIds.has(w.webhookId)) {
      this.duplicated += 1;
      return;
    }
    this.webhookIds.add(w.webhookId);
    if (w.type !== "qr.updated") {
      this.otherEvents[w.type] = (this.otherEvents[w.type] ?? 0) + 1;
      return;
    }
    const f = w.pngSha256 === null ? undefined : this.frames.get(frameKey(w.pngSha256));
    if (f === undefined) {
      this.unmatched += 1;
      return;
    }
    if (this.frameDelivered[f]) {
      this.duplicated += 1;
      return;
    }
    this.frameDelivered[f] = 1;
    this.delivered += 1;
    const i = this.frameInstance[f]!;
    if (Number.isNaN(this.firstDeliveryAt[i]!)) this.firstDeliveryAt[i] = w.at;
    this.latencies.push(w.at - this.frameSentAt[f]!);
  }

  /** An email accepted by the sink; `raw` is the whole message as Latin-1 text. */
  email(raw: string, at: number): void {
    this.emails += 1;
    this.lastArrivalAt = at;
    const headerEnd = raw.indexOf("\r\n\r\n");
    if (ABOUT_THE_FLEET.test(headerEnd < 0 ? raw : raw.slice(0, headerEnd))) {
      this.emailsAboutTheFleet += 1;
      return;
    }
    const i = this.instanceNamedIn(raw);
    if (i === undefined) {
      this.emailUnmatched += 1;
      return;
    }
    const key = `${i}:${this.connection[i]}`;
    if (this.emailed.has(key)) {
      this.emailDuplicates += 1;
      return;
    }
    this.emailed.add(key);
    const first = this.connectionFirstFrameAt[i]!;
    if (!Number.isNaN(first)) this.emailLatencies.push(at - first);
  }

  /**
   * The X-Qrfleet-Instance header when present (one regex over the header block); otherwise the
   * first digit run in the message that is an idInstance of this phase (the subject names it).
   * Parsing MIME at hundreds of messages a second would cost more than the daemon's sending.
   */
  private instanceNamedIn(raw: string): number | undefined {
    const headerEnd = raw.indexOf("\r\n\r\n");
    const header = HEADER.exec(headerEnd < 0 ? raw : raw.slice(0, headerEnd));
    if (header) return this.indexOf.get(header[1]!);
    for (const match of raw.matchAll(/\d{4,20}/g)) {
      const i = this.indexOf.get(match[0]);
      if (i !== undefined) return i;
    }
    return undefined;
  }

  result(): LedgerResult {
    const newestDelivered = new Float64Array(this.indexOf.size).fill(-Infinity);
    for (let f = 0; f < this.frameSentAt.length; f += 1) {
      const i = this.frameInstance[f]!;
      if (this.frameDelivered[f]) newestDelivered[i] = Math.max(newestDelivered[i]!, this.frameSentAt[f]!);
    }
    let superseded = 0;
    for (let f = 0; f < this.frameSentAt.length; f += 1) {
      if (!this.frameDelivered[f] && this.frameSentAt[f]! < newestDelivered[this.frameInstance[f]!]!) superseded += 1;
    }
    return {
      sent: this.sent,
      delivered: this.delivered,
      superseded,
      lost: this.sent - this.delivered - superseded,
      duplicated: this.duplicated,
      invalidSignatures: this.invalidSignatures,
      unmatched: this.unmatched,
      otherEvents: { ...this.otherEvents },
      latencyMs: summarize(this.latencies),
      emails: this.emails,
      emailDuplicates: this.emailDuplicates,
      emailUnmatched: this.emailUnmatched,
      emailsAboutTheFleet: this.emailsAboutTheFleet,
      emailLatencyMs: summarize(this.emailLatencies),
      socketsOpenMax: this.openMax,
      allOpenAt: this.allOpenAt,
    };
  }
}
