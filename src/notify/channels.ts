import type { ChannelKind, Db } from "../db.js";
import { outboundProblem } from "../outbound.js";
import type { SecretBox } from "../secrets.js";
import { webhookSigner, type WebhookSigner } from "./webhook.js";

/** A channel as a sender needs it: its webhook secret opened once, not once per QR. */
export interface ChannelInfo {
  id: string;
  kind: ChannelKind;
  /** An email address or a webhook URL. */
  address: string;
  enabled: boolean;
  /** Since when every try has failed, as read (channel-health.ts keeps it). */
  failingSince: Date | null;
  /** Webhooks: signs with the channel's secret; null when it cannot (see `problem`). */
  signer: WebhookSigner | null;
  /** Why this channel cannot be sent to, or null. */
  problem: string | null;
}

const UNREADABLE_SECRET = "cannot decrypt the webhook secret (was QRFLEET_SECRET_KEY changed?)";

export function channelInfo(
  box: SecretBox,
  row: { id: string; kind: ChannelKind; address: string; enabled: boolean; failingSince?: Date | null; secretCiphertext: Uint8Array | null },
): ChannelInfo {
  const base = {
    id: row.id, kind: row.kind, address: row.address, enabled: row.enabled, failingSince: row.failingSince ?? null, signer: null, problem: null,
  };
  if (row.kind !== "webhook") return base;
  const refused = addressProblem(row.address);
  if (refused) return { ...base, problem: refused };
  if (!row.secretCiphertext) return { ...base, problem: "the webhook channel has no signing secret" };
  let secret: string;
  try {
    secret = box.open(row.secretCiphertext);
  } catch {
    return { ...base, problem: UNREADABLE_SECRET };
  }
  const signer = webhookSigner(secret);
  return typeof signer === "string" ? { ...base, problem: signer } : { ...base, signer };
}

/** A URL stored before it was checked (an older version) can still be refused here, for good. */
function addressProblem(address: string): string | null {
  let url: URL;
  try {
    url = new URL(address);
  } catch {
    return "the webhook URL is not a URL";
  }
  const problem = outboundProblem(url);
  return problem ? `the webhook URL ${problem}` : null;
}

/**
 * Channels by id, kept for a minute. A channel's address and secret never change (a new one is a
 * new channel), and routing reads `enabled` from the database in the statement that creates the
 * deliveries; so the minute only bounds how long a channel disabled meanwhile still gets a send
 * (and a disable also fails the channel's pending deliveries, which makes such a send's record a no-op).
 */
export class ChannelCache {
  private readonly entries = new Map<string, { info: ChannelInfo; at: number }>();

  constructor(
    private readonly db: Db,
    private readonly box: SecretBox,
    private readonly ttlMs = 60_000,
    private readonly maxEntries = 10_000,
  ) {}

  async get(ids: readonly string[]): Promise<Map<string, ChannelInfo>> {
    const now = Date.now();
    const found = new Map<string, ChannelInfo>();
    const missing = new Set<string>();
    for (const id of ids) {
      const hit = this.entries.get(id);
      if (hit && now - hit.at < this.ttlMs) found.set(id, hit.info);
      else missing.add(id);
    }
    if (missing.size === 0) return found;
    const rows = await this.db.channel.findMany({
      where: { id: { in: [...missing] } },
      select: { id: true, kind: true, address: true, enabled: true, failingSince: true, secretCiphertext: true },
    });
    if (this.entries.size + rows.length > this.maxEntries) this.entries.clear();
    for (const row of rows) {
      const info = channelInfo(this.box, row);
      this.entries.set(row.id, { info, at: now });
      found.set(row.id, info);
    }
    return found;
  }

  /** Forgets one channel, so the next send reads it again (it was disabled here). */
  forget(id: string): void {
    this.entries.delete(id);
  }
}
