import { Batcher } from "../lib/batcher.js";
import { ChannelHealth } from "../notify/channel-health.js";
import { ChannelCache } from "../notify/channels.js";
import { handOffResultMs, type DeliverDeps } from "../notify/deliver.js";
import type { TryDeps } from "../notify/delivery-try.js";
import { Dispatcher } from "../notify/dispatcher.js";
import { createThreadMailer } from "../notify/mail-thread.js";
import { DeliveryRecorder } from "../notify/recorder.js";
import { DEFAULT_RETRY_POLICY } from "../notify/schedule.js";
import { claimAttempts, handBack, type Claim, type ClaimRequest } from "../fleet/sessions/attempts.js";
import { guardedAgent } from "../outbound-guard.js";
import type { FleetContext } from "../fleet/context.js";
import { webhookPolicy } from "../fleet/provider/outbound.js";
import type { SessionPipeline } from "../fleet/sessions/qr-intake.js";
import { QrStore } from "../fleet/sessions/qr-store.js";

/**
 * Everything a daemon needs to get a QR from a socket to its operators, built once per process:
 * the batched writer, the in-process sender with its keep-alive connections and SMTP pool, and
 * the same senders for the notify queue's retries.
 */
export interface NotifyPipeline {
  session: SessionPipeline;
  /** For the notify queue's processor (retries and recovered deliveries). */
  retries: DeliverDeps;
  close(): Promise<void>;
}

/** `worker` names this process in each attempt it runs (QrAttempt.worker). */
export function openPipeline(ctx: FleetContext, worker: string): NotifyPipeline {
  const { config, log } = ctx;
  const onError = (what: string) => (err: unknown, items: number, willRetry: boolean) =>
    log[willRetry ? "warn" : "error"]({ err, items, willRetry }, `${what} failed`);
  const mailer = createThreadMailer({ smtpUrl: config.SMTP_URL, from: config.SMTP_FROM, maxConnections: config.SMTP_CONNECTIONS });
  // Keep-alive connections to webhook endpoints, shared by first tries and retries.
  const http = guardedAgent(webhookPolicy(ctx), { keepAliveTimeout: 30_000, connections: 64 });
  const leaseMs = Math.max(config.QRFLEET_DELIVERY_LEASE_MS, config.QRFLEET_WEBHOOK_TIMEOUT_MS + 5_000);
  const retry = { multiplier: config.QRFLEET_DELIVERY_RETRY_MULTIPLIER, retryAfterMaxMs: config.QRFLEET_WEBHOOK_RETRY_AFTER_MAX_MS };
  const send = {
    box: ctx.box, mailer, http,
    publicUrl: config.QRFLEET_PUBLIC_URL, liveLinkTtlS: config.QRFLEET_LIVE_LINK_TTL_S, webhookTimeoutMs: config.QRFLEET_WEBHOOK_TIMEOUT_MS,
  };
  const recorder = new DeliveryRecorder(ctx.sql, onError("recording delivery results"), handOffResultMs(leaseMs));
  const channels = new ChannelCache(ctx.db, ctx.box);
  const health = new ChannelHealth({
    sql: ctx.sql, mailer, log, disableAfterMs: config.QRFLEET_CHANNEL_DISABLE_AFTER_MS, onDisabled: (id) => channels.forget(id),
  });
  const tries: TryDeps = {
    send, recorder, health, policy: { ...DEFAULT_RETRY_POLICY, ...retry }, onResult: (r) => ctx.events.emit("delivery:result", r),
  };
  const dispatcher = new Dispatcher({ tries, log, queues: ctx.queues, channels });
  const claims = new Batcher({ run: (requests: ClaimRequest[]) => claimAttempts(ctx, requests, worker), onError: onError("claiming attempts") });
  const handBacks = new Batcher({ run: (claims: Claim[]) => handBack(ctx, claims), onError: onError("handing attempts back") });
  const store = new QrStore(ctx.sql, { escalateAfter: config.QRFLEET_ESCALATE_AFTER, leaseMs, onError: onError("storing QR codes") });
  return {
    session: { store, dispatcher, leaseMs, claims, handBacks },
    retries: { ...tries, db: ctx.db, leaseMs },
    async close() {
      await Promise.all([claims.drain(), store.drain(), handBacks.drain()]);
      await dispatcher.close();
      await Promise.all([mailer.close(), http.close()]);
    },
  };
}
