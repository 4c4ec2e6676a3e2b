import type { Batcher } from "../../lib/batcher.js";
import type { QrImage } from "../../greenapi/types.js";
import type { Dispatcher, Outbound } from "../../notify/dispatcher.js";
import { QR_VALIDITY_MS, type EventView, type QrView } from "../../notify/types.js";
import type { Claim, ClaimRequest } from "./attempts.js";
import type { FleetContext } from "../context.js";
import type { QrStore, StoredQr } from "./qr-store.js";

/** What a daemon runs sessions with: the batched QR writer and the in-process sender. */
export interface SessionPipeline {
  store: QrStore;
  dispatcher: Dispatcher;
  /** How long this process holds the deliveries it sends itself, in ms. */
  leaseMs: number;
  /** Attempts taken by runs, many per statement (see claimAttempts). */
  claims: Batcher<ClaimRequest, Claim | null>;
  /** Attempts given back to the queue, many per statement (see handBack). */
  handBacks: Batcher<Claim, boolean>;
}

export const STALE_RUN = "the session was ended or taken over elsewhere";
export const STORE_FAILED = "the QR could not be stored";

/** The fields of a session's events that the claim already knows. */
export function eventParties(claim: Claim, status: string): Pick<EventView, "instance" | "session"> {
  const { instance, session } = claim;
  return {
    instance: { id: instance.id, idInstance: instance.idInstance, label: instance.label, expectedPhone: instance.expectedPhone },
    session: {
      id: session.id, trigger: session.trigger, status, attempt: session.attempt, maxAttempts: session.maxAttempts,
      phone: null, errorCode: null, error: null,
    },
  };
}

/**
 * One attempt's QR codes on their way from the socket to the operators: each image goes to the
 * store at once (the socket is not held while it is written), and each committed image's
 * deliveries go to the dispatcher. The socket waits only when the store is congested.
 */
export class QrIntake {
  private latest: QrView | null = null;
  private open = true;
  /** Whether the next image handed over is the attempt's first (then it is emailed). */
  private firstPending: boolean;
  private readonly pending = new Set<Promise<void>>();
  private failure: unknown = undefined;

  constructor(
    private readonly ctx: FleetContext,
    private readonly pipeline: SessionPipeline,
    private readonly claim: Claim,
    private readonly stop: (reason: string) => void,
  ) {
    this.firstPending = !claim.attemptHasQr;
  }

  /** The session's `onQr`: returns nothing, or a promise while the store has no room. */
  readonly onQr = (image: QrImage): Promise<void> | undefined => {
    const { session, runId } = this.claim;
    const first = this.firstPending;
    this.firstPending = false;
    const written = this.pipeline.store.store({ sessionId: session.id, runId, attempt: session.attempt, first, image }).then(
      (stored) => this.stored(image, stored),
      (err: unknown) => {
        this.failure ??= err;
        this.stop(STORE_FAILED);
      },
    );
    this.pending.add(written);
    void written.finally(() => this.pending.delete(written));
    return this.pipeline.store.congested ? this.pipeline.store.room() : undefined;
  };

  /** Waits until every image handed over is written; resolves with the store's error, if any. */
  async settle(): Promise<unknown> {
    while (this.pending.size > 0) await Promise.all([...this.pending]);
    this.open = false;
    return this.failure;
  }

  private stored(image: QrImage, stored: StoredQr): void {
    if (stored.kind === "stale") return this.stop(STALE_RUN);
    if (stored.kind === "duplicate") return;
    const { session, instance } = this.claim;
    const qr: QrView = {
      png: image.png, sequence: stored.sequence, receivedAt: image.receivedAt,
      validUntil: new Date(image.receivedAt.getTime() + QR_VALIDITY_MS),
    };
    this.latest = qr;
    this.ctx.events.emit("session:qr", {
      sessionId: session.id, instanceId: instance.id, trigger: session.trigger, attempt: session.attempt, sequence: stored.sequence,
      sessionCreatedAt: session.createdAt, receivedAt: image.receivedAt,
    });
    const view: EventView = {
      id: stored.event.id, type: "qr.updated", createdAt: stored.event.createdAt, attempt: session.attempt,
      qrSequence: stored.sequence,
      data: { sequence: stored.sequence, receivedAt: image.receivedAt.toISOString(), firstOfAttempt: stored.firstOfAttempt },
      ...eventParties(this.claim, "running"),
    };
    const leaseUntil = Date.now() + this.pipeline.leaseMs;
    // Asked right before each send: whether the attempt still runs, and its newest image (notify/kinds decides).
    const qrs = () => ({ open: this.open, announced: qr, latest: this.latest });
    const items: Outbound[] = stored.deliveries
      .filter((d) => d.status === "pending")
      .map((d) => ({ deliveryId: d.id, channelId: d.channelId, view, key: session.id, supersedes: true, qrs, leaseUntil, receivedAt: image.receivedAt }));
    this.pipeline.dispatcher.dispatch(items);
  }
}
