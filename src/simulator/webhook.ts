import type { Logger } from "../log.js";
import { maskSecrets } from "../log.js";

export interface StateChange {
  idInstance: string;
  wid: string;
  stateInstance: string;
  /** The instance's webhook token, sent back as `Authorization: Bearer <token>`. */
  webhookToken?: string;
}

/**
 * Posts `stateInstanceChanged` like the provider, to the instance's own webhookUrl: fire and
 * forget, bounded, errors only logged. Given targets (daemons behind no load balancer), each POST
 * goes to the next one of them in turn instead, whatever the instance's settings say.
 */
export class WebhookSender {
  private readonly inflight = new Set<Promise<void>>();
  private readonly closing = new AbortController();
  private urls: readonly string[] = [];
  private turn = 0;
  sent = 0;
  failed = 0;

  constructor(
    private readonly log: Logger,
    private readonly timeoutMs = 5_000,
  ) {}

  /** Where webhooks go from now on, whatever each instance's settings say; none: where they say. */
  retarget(urls: readonly string[]): void {
    this.urls = [...urls];
  }

  send(url: string, change: StateChange): void {
    const target = this.urls.length > 0 ? this.urls[this.turn++ % this.urls.length]! : url;
    if (this.closing.signal.aborted || target === "") return;
    const job = this.post(target, change).finally(() => this.inflight.delete(job));
    this.inflight.add(job);
  }

  /** Aborts what is in flight, so a closed simulator leaves no socket behind. */
  async close(): Promise<void> {
    this.closing.abort();
    await Promise.allSettled([...this.inflight]);
  }

  private async post(url: string, change: StateChange): Promise<void> {
    const body = {
      typeWebhook: "stateInstanceChanged",
      instanceData: { idInstance: Number(change.idInstance), wid: change.wid, typeInstance: "whatsapp" },
      timestamp: Math.floor(Date.now() / 1000),
      stateInstance: change.stateInstance,
    };
    const headers: Record<string, string> = { "content-type": "application/json" };
    if (change.webhookToken) headers.authorization = `Bearer ${change.webhookToken}`;
    try {
      const res = await fetch(url, {
        method: "POST",
        headers,
        body: JSON.stringify(body),
        signal: AbortSignal.any([this.closing.signal, AbortSignal.timeout(this.timeoutMs)]),
      });
      await res.body?.cancel();
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      this.sent += 1;
    } catch (err) {
      this.failed += 1;
      if (this.closing.signal.aborted) return;
      this.log.warn({ idInstance: change.idInstance, err: maskSecrets(String(err)) }, "simulator webhook failed");
    }
  }
}
