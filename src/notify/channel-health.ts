import type { ChannelKind, Sql } from "../db.js";
import { maskSecrets, type Logger } from "../log.js";
import { shownAddress } from "../outbound.js";
import type { Mailer } from "./email.js";
import type { TryResult } from "./types.js";
import { CHANNEL_KINDS } from "./kinds/index.js";

/**
 * Stops sending where nobody listens. A receiver answering 410 Gone is disabled at once; a webhook
 * channel whose every try has failed for `disableAfterMs` is disabled too. Either way its pending
 * deliveries stop, routing gives it nothing new (routing.ts reads `enabled` in the statement that
 * records an event, so the per-QR path pays nothing for this), and its operator's other email
 * channels are told once: the guarded UPDATE lets one process, one time, win the change.
 *
 * Tries that succeed on a healthy channel cost nothing here: the database is written only when
 * a channel starts or stops failing, and a failing one at most once per `FAILURE_WRITE_EVERY_MS`
 * (or a tenth of `disableAfterMs`, when that is shorter) by each process.
 */

export interface ChannelHealthOptions {
  sql: Sql;
  mailer: Mailer;
  log: Logger;
  /** A channel failing without a break for this long is disabled, in ms. */
  disableAfterMs: number;
  /** Told when this process disabled a channel (its cached copy is stale now). */
  onDisabled?(channelId: string): void;
}

/** What a sender knows of a channel when it reports a try. */
export interface TriedChannel {
  id: string;
  kind: ChannelKind;
  /** As last read from the database (the channel cache's copy may be a minute old). */
  failingSince: Date | null;
}

const FAILURE_WRITE_EVERY_MS = 10_000;
const MAX_TRACKED = 10_000;
/** How long what this process wrote outlives the channel cache's copy (its lifetime). */
const DISABLED_MEMORY_MS = 60_000;

const MARK_FAILING_SQL = `
  UPDATE "Channel" SET "failingSince" = COALESCE("failingSince", now())
  WHERE id = $1::uuid AND enabled
  RETURNING to_char("failingSince", 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS since, "failingSince" <= now() - $2::float8 * interval '1 millisecond' AS overdue`;

const CLEAR_FAILING_SQL = `UPDATE "Channel" SET "failingSince" = NULL WHERE id = $1::uuid AND "failingSince" IS NOT NULL`;

/** Disables the channel and fails its deliveries that no run is handing to SMTP; one caller wins. */
const DISABLE_SQL = `
  WITH c AS (
    UPDATE "Channel" SET enabled = false, "disabledReason" = $2, "disabledAt" = now()
    WHERE id = $1::uuid AND enabled
    RETURNING id, "operatorId", kind, address
  ), stopped AS (
    UPDATE "Delivery" d SET status = 'failed', "lastError" = $3, "nextTryAt" = now(), "updatedAt" = now()
    FROM c WHERE d."channelId" = c.id AND d.status = 'pending' AND d."handedOffAt" IS NULL
    RETURNING d.id
  )
  SELECT c."operatorId"::text AS "operatorId", c.kind::text AS kind, c.address, (SELECT count(*) FROM stopped)::int AS stopped FROM c`;

const OTHER_EMAILS_SQL = `
  SELECT address FROM "Channel" WHERE "operatorId" = $1::uuid AND kind = 'email' AND enabled AND id <> $2::uuid`;

export class ChannelHealth {
  /** Channels this process knows are failing, with when it last wrote so. */
  private readonly failing = new Map<string, number>();
  /** Channels this process cleared, with when: their cached copy may still show them failing for a minute. */
  private readonly cleared = new Map<string, number>();
  /** Channels this process disabled, with when: sends already queued here hold a copy that says enabled. */
  private readonly disabled = new Map<string, number>();

  constructor(private readonly opts: ChannelHealthOptions) {}

  /** True for a minute (the channel cache's lifetime) after this process disabled the channel. */
  disabledHere(channelId: string): boolean {
    const at = this.disabled.get(channelId);
    if (at === undefined) return false;
    if (Date.now() - at < DISABLED_MEMORY_MS) return true;
    this.disabled.delete(channelId);
    return false;
  }

  /** Records what one try to the channel came to; never throws (health is advice, not the send). */
  async afterTry(channel: TriedChannel, result: TryResult): Promise<void> {
    try {
      if (result.kind === "sent") return await this.succeeded(channel);
      if (result.kind === "permanent" && result.gone) {
        return void (await this.disable(channel.id, `the endpoint answered 410 Gone (${new Date().toISOString()})`));
      }
      if (CHANNEL_KINDS[channel.kind].disabledForFailing) await this.failed(channel.id);
    } catch (err) {
      this.opts.log.warn({ err, channelId: channel.id }, "could not record the channel's health");
    }
  }

  /**
   * Disables the channel for `reason`, fails its pending deliveries and tells the operator's
   * email channels. False when it was already disabled (someone else won).
   */
  async disable(channelId: string, reason: string): Promise<boolean> {
    const lastError = `the channel was disabled: ${reason}`.slice(0, 1000);
    const { rows } = await this.opts.sql.query<{ operatorId: string; kind: string; address: string; stopped: number }>(
      DISABLE_SQL, [channelId, reason, lastError],
    );
    const row = rows[0];
    this.failing.delete(channelId);
    if (!row) return false;
    if (this.disabled.size >= MAX_TRACKED) this.disabled.clear();
    this.disabled.set(channelId, Date.now());
    this.opts.onDisabled?.(channelId);
    this.opts.log.warn({ channelId, kind: row.kind, reason, stoppedDeliveries: row.stopped }, "channel disabled");
    await this.tellOperator(channelId, row, reason);
    return true;
  }

  private async succeeded(channel: TriedChannel): Promise<void> {
    const clearedAt = this.cleared.get(channel.id);
    const clearedLately = clearedAt !== undefined && Date.now() - clearedAt < DISABLED_MEMORY_MS;
    if (!this.failing.has(channel.id) && (channel.failingSince === null || clearedLately)) return;
    this.failing.delete(channel.id);
    if (this.cleared.size >= MAX_TRACKED) this.cleared.clear();
    this.cleared.set(channel.id, Date.now());
    await this.opts.sql.query(CLEAR_FAILING_SQL, [channel.id]);
  }

  private async failed(channelId: string): Promise<void> {
    const now = Date.now();
    const wrote = this.failing.get(channelId);
    if (wrote !== undefined && now - wrote < Math.min(FAILURE_WRITE_EVERY_MS, this.opts.disableAfterMs / 10)) return;
    if (this.failing.size >= MAX_TRACKED) this.failing.clear();
    this.failing.set(channelId, now);
    this.cleared.delete(channelId);
    // The column holds UTC without a zone: read as text, so no client time zone can shift it.
    const { rows } = await this.opts.sql.query<{ since: string; overdue: boolean }>(MARK_FAILING_SQL, [channelId, this.opts.disableAfterMs]);
    const row = rows[0];
    if (!row?.overdue) return;
    const hours = Math.round((now - Date.parse(row.since)) / 360_000) / 10;
    await this.disable(channelId, `every try failed since ${row.since} (${hours} h)`);
  }

  private async tellOperator(channelId: string, channel: { operatorId: string; kind: string; address: string }, reason: string): Promise<void> {
    const { rows } = await this.opts.sql.query<{ address: string }>(OTHER_EMAILS_SQL, [channel.operatorId, channelId]);
    const shown = shownAddress(maskSecrets(channel.address));
    const notice = {
      subject: `qrfleet stopped sending to your ${channel.kind} channel ${shown}`,
      paragraphs: [
        `qrfleet disabled the ${channel.kind} channel ${shown}: ${reason}. It gets no QR codes or outcomes until it is enabled again; its pending deliveries were stopped.`,
        `When the endpoint works again: qrfleet operator enable-channel ${channelId} (or POST /api/channels/${channelId}/enable), then replay what it missed with qrfleet deliveries retry --failed --channel ${channelId}.`,
      ],
    };
    for (const { address } of rows) {
      const result = await this.opts.mailer.send({ notice, to: address });
      if (result.kind !== "sent") this.opts.log.warn({ channelId, err: result.error }, "could not email the operator about a disabled channel");
    }
  }
}

/** Enables a channel again (an operator's decision): it is routed new events from now on. Null: no such channel. */
export async function enableChannel(sql: Sql, channelId: string): Promise<{ id: string; wasDisabled: boolean } | null> {
  const { rows } = await sql.query<{ id: string; was_disabled: boolean }>(
    `UPDATE "Channel" c SET enabled = true, "disabledReason" = NULL, "disabledAt" = NULL, "failingSince" = NULL
     FROM (SELECT id, enabled FROM "Channel" WHERE id = $1::uuid FOR UPDATE) old
     WHERE c.id = old.id RETURNING c.id::text AS id, NOT old.enabled AS was_disabled`,
    [channelId],
  );
  const row = rows[0];
  return row ? { id: row.id, wasDisabled: row.was_disabled } : null;
}
