import { EventEmitter } from "node:events";
import type { SessionStatus, SessionTrigger } from "../db.js";
import type { DeliveryReport } from "../notify/delivery-try.js";

/** Business code emits these; logs and metrics subscribe (they never live inside the logic). */
export interface FleetEventMap {
  "session:transition": [
    {
      sessionId: string;
      instanceId: string;
      from: SessionStatus | null;
      to: SessionStatus;
      /** What started the session (metrics count outcomes by it). */
      trigger: SessionTrigger;
      attempt: number;
      reason?: string;
      nextAttemptInMs?: number;
    },
  ];
  /** This process started running an attempt (`running`), or stopped, however it ended (a cancel from elsewhere included). */
  "attempt:run": [{ sessionId: string; running: boolean }];
  /**
   * A QR code was stored; `sequence` counts in the session. `sessionCreatedAt` (when the trigger
   * asked for the session) and `receivedAt` time the first QR; both come with the claim and the
   * frame, so no lookup is made per QR.
   */
  "session:qr": [
    { sessionId: string; instanceId: string; trigger: SessionTrigger; attempt: number; sequence: number; sessionCreatedAt: Date; receivedAt: Date },
  ];
  "session:notice": [{ sessionId: string; kind: string; detail?: string; count?: number }];
  "instance:state": [{ instanceId: string; state: string }];
  /** A batch of the sweep's state polls was recorded: how many, and how many of them failed. */
  "sweep:polled": [{ polls: number; errors: number }];
  /** Instances were added, removed or given another webhook token: what a cache knows of them is stale. */
  "instances:changed": [{ idInstances: string[] }];
  /** This process was away from Redis and may have missed `instances:changed`: any instance may be stale. */
  "instances:resync": [];
  /** A step of a provider-state episode (fleet/instances/alerts.ts): operators alerted or warned, a reboot, the state over. */
  "instance:episode": [
    { instanceId: string; state: string; step: "alerted" | "warned" | "rebooted" | "reboot_refused" | "reboot_failed" | "recovered"; detail?: string },
  ];
  /**
   * The webhook settings read after a re-link (fleet/instances/settings-watch.ts): found changed (operators
   * alerted), set back or not, or not readable.
   */
  "instance:settings": [{ instanceId: string; step: "changed" | "restored" | "not_restored" | "check_failed"; detail?: string }];
  /** A try of a delivery (or its expiry unsent) came to `status`; `receivedAt` is set for a QR update's first try. */
  "delivery:result": [DeliveryReport];
}

/**
 * A listener that throws must not turn what was just committed into an error for the code that
 * emitted it: each listener runs on its own, and a failure goes to `onListenerError`.
 */
export class FleetEvents extends EventEmitter<FleetEventMap> {
  constructor(private readonly onListenerError: (event: keyof FleetEventMap, err: unknown) => void = () => undefined) {
    super();
  }

  override emit<K extends keyof FleetEventMap>(event: K, ...args: FleetEventMap[K]): boolean {
    const listeners = this.rawListeners(event) as Array<(...a: FleetEventMap[K]) => unknown>;
    for (const listener of listeners) {
      try {
        listener.apply(this, args);
      } catch (err) {
        this.onListenerError(event, err);
      }
    }
    return listeners.length > 0;
  }
}
