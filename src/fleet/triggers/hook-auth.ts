import { createHash, timingSafeEqual } from "node:crypto";
import { Batcher } from "../../lib/batcher.js";
import type { FleetContext } from "../context.js";
import { FleetError } from "../errors.js";

/**
 * Who may speak for an instance on the provider's webhook: whoever presents its webhook token.
 * Several apiUrls may share an idInstance; the token picks which of them the caller speaks for. An
 * instance without a webhook token never matches, because an open endpoint would let anyone make
 * the fleet open QR sessions in a loop.
 *
 * The fleet's instances are kept in memory by idInstance, each with the SHA-256 of its webhook
 * token (never the token), read again every QRFLEET_PROVIDER_HOOK_CACHE_MS while the old reading
 * keeps serving. So a storm of webhooks costs a hash and a comparison per call, not a query and a
 * decryption, and a flood of forged ones with made-up idInstances reaches no database at all; and
 * since every answer comes from memory, it takes as long whether the instance exists or not. An
 * instance added, removed or given another token is read again before its next webhook (`forget`),
 * told by this process or over Redis by another (fleet/instances/instance-changes.ts). Such messages are lost
 * only while this process is away from Redis, so the fleet is read again when it is back (`resync`);
 * the periodic reading is the backstop for anything else.
 *
 * A reading goes a page at a time and updates the entries in place: it compares each row's
 * fingerprint (an md5 PostgreSQL takes of the sealed token) and fetches and opens only the tokens
 * that changed, so at 100,000 instances it holds a page, not a second copy of the fleet.
 */

export class UnauthorizedError extends FleetError {
  constructor(message: string) {
    super("unauthorized", 401, message);
  }
}

/** One answer for every refusal, so a caller without the token learns nothing about which instances exist. */
const REFUSED = "not accepted: the Authorization header does not carry the webhook token of an instance in this fleet";

interface Candidate {
  id: string;
  /** SHA-256 of the webhook token; null: none is set, or it opens under no key of the ring. */
  digest: Buffer | null;
  /** md5 of the sealed token, so a reading of the fleet opens only what changed; null: none is set. */
  mark: string | null;
  /** The reading of the fleet that last saw it: one the latest reading did not see was removed. */
  seen: number;
}

interface Row {
  id: string;
  idInstance: string;
  mark: string | null;
}

/** Instances per page of a reading of the fleet. */
const PAGE = 5_000;
const PAGE_SQL = `SELECT id::text AS id, "idInstance", md5("webhookTokenCiphertext") AS mark FROM "Instance"
  WHERE id > $1::uuid ORDER BY id LIMIT $2`;
const SEALED_SQL = `SELECT id::text AS id, "webhookTokenCiphertext" AS sealed FROM "Instance" WHERE id = ANY($1::uuid[])`;
const SOME_SQL = `SELECT id::text AS id, "idInstance", md5("webhookTokenCiphertext") AS mark, "webhookTokenCiphertext" AS sealed
  FROM "Instance" WHERE "idInstance" = ANY($1::text[])`;
const FIRST_ID = "00000000-0000-0000-0000-000000000000";

const sha256 = (s: string) => createHash("sha256").update(s, "utf8").digest();
/** Compared against when no instance has a token, so every refusal does the same work. */
const NO_DIGEST = sha256("");
const NOBODY: Candidate = { id: "", digest: null, mark: null, seen: 0 };

export class WebhookTokens {
  /** Every idInstance of the fleet, as of `readAt`. */
  private readonly fleet = new Map<string, Candidate[]>();
  private readAt = -Infinity;
  private readings = 0;
  private reading: Promise<void> | null = null;
  /** Changed in this process since the reading, with a count of changes: read on their own before they are answered. */
  private readonly changed = new Map<string, number>();
  private readonly someReads: Batcher<string, Candidate[]>;
  /** Refusals logged since the reading, by idInstance of the fleet: a flood is a line per instance, not per call. */
  private readonly refusalsLogged = new Set<string>();

  constructor(
    private readonly ctx: FleetContext,
    private readonly ttlMs = ctx.config.QRFLEET_PROVIDER_HOOK_CACHE_MS,
    private readonly pageSize = PAGE,
  ) {
    this.someReads = new Batcher({
      run: (idInstances) => this.readSome(idInstances),
      onError: (err, items, willRetry) => ctx.log[willRetry ? "warn" : "error"]({ err, items, willRetry }, "reading webhook tokens failed"),
    });
  }

  /** The ids of the instances of `idInstance` whose token `authorization` carries; an UnauthorizedError if none. */
  async authenticate(idInstance: string, authorization: string | undefined): Promise<string[]> {
    const candidates = await this.candidatesOf(idInstance);
    const presented = presentedToken(authorization);
    const digest = presented === null ? NO_DIGEST : sha256(presented);
    const compared = candidates.length > 0 ? candidates : [NOBODY];
    const matching = compared.filter((c) => timingSafeEqual(c.digest ?? NO_DIGEST, digest) && c.digest !== null && presented !== null);
    if (matching.length > 0) return matching.map((c) => c.id);
    this.logRefusal(idInstance, candidates, presented);
    throw new UnauthorizedError(REFUSED);
  }

  /** Reads the fleet now, in the background, so the first webhook does not wait for it. */
  warm(): void {
    if (this.ttlMs > 0 && this.readAt === -Infinity) void this.readFleet().catch(() => undefined);
  }

  /** These idInstances' instances were added, removed or given another webhook token: read them again. */
  forget(idInstances: readonly string[]): void {
    for (const i of idInstances) this.changed.set(i, (this.changed.get(i) ?? 0) + 1);
  }

  /** Changes may have gone unannounced (this process was away from Redis): the fleet is read again now, behind the reading in use. */
  resync(): void {
    if (this.ttlMs > 0) void this.readFleet().catch(() => undefined);
  }

  /** Waits for the reading of the fleet and the reads in flight. */
  async close(): Promise<void> {
    await Promise.allSettled([this.reading, this.someReads.drain()]);
  }

  private async candidatesOf(idInstance: string): Promise<Candidate[]> {
    if (this.ttlMs === 0) return this.someReads.push(idInstance);
    if (this.readAt === -Infinity) await this.readFleet();
    // Later readings refresh behind the one in use: no webhook waits for them.
    else if (Date.now() - this.readAt >= this.ttlMs) void this.readFleet().catch(() => undefined);
    const mark = this.changed.get(idInstance);
    if (mark === undefined) return this.fleet.get(idInstance) ?? [];
    const candidates = await this.someReads.push(idInstance);
    // Changed again while it was read: the next webhook reads it once more.
    if (this.changed.get(idInstance) === mark) this.changed.delete(idInstance);
    if (candidates.length > 0) this.fleet.set(idInstance, candidates);
    else this.fleet.delete(idInstance);
    return candidates;
  }

  /** One reading of the whole fleet at a time; what changed while it ran stays to be read on its own. */
  private readFleet(): Promise<void> {
    this.reading ??= (async () => {
      const startedAt = Date.now();
      const marks = new Map(this.changed);
      const reading = ++this.readings;
      for (let after = FIRST_ID; ; ) {
        const { rows } = await this.ctx.sql.query<Row>({ name: "qrfleet-webhook-tokens-page-v2", text: PAGE_SQL, values: [after, this.pageSize] });
        await this.update(rows, reading);
        if (rows.length < this.pageSize) break;
        after = rows[rows.length - 1]!.id;
      }
      this.dropUnseen(reading);
      for (const [i, mark] of marks) if (this.changed.get(i) === mark) this.changed.delete(i);
      this.readAt = startedAt;
      this.refusalsLogged.clear();
    })()
      .catch((err: unknown) => {
        this.ctx.log.warn({ err }, "reading the fleet's webhook tokens failed; the previous reading stays in use");
        throw err;
      })
      .finally(() => (this.reading = null));
    return this.reading;
  }

  /** A page of the fleet into the entries: the unchanged are marked seen, the new and changed opened. */
  private async update(rows: Row[], reading: number): Promise<void> {
    const changed: Row[] = [];
    for (const row of rows) {
      const known = this.fleet.get(row.idInstance)?.find((c) => c.id === row.id);
      if (known && known.mark === row.mark) known.seen = reading;
      else changed.push(row);
    }
    const withToken = changed.filter((r) => r.mark !== null).map((r) => r.id);
    const sealed = new Map<string, Buffer>();
    if (withToken.length > 0) {
      const { rows: found } = await this.ctx.sql.query<{ id: string; sealed: Buffer | null }>({ name: "qrfleet-webhook-tokens-sealed-v2", text: SEALED_SQL, values: [withToken] });
      for (const f of found) if (f.sealed) sealed.set(f.id, f.sealed);
    }
    for (const row of changed) this.put(row.idInstance, { id: row.id, digest: this.digestOf(row.id, sealed.get(row.id) ?? null), mark: row.mark, seen: reading });
  }

  private put(idInstance: string, candidate: Candidate): void {
    const list = (this.fleet.get(idInstance) ?? []).filter((c) => c.id !== candidate.id);
    list.push(candidate);
    this.fleet.set(idInstance, list);
  }

  /** Instances the reading did not see are gone (or moved to another idInstance). */
  private dropUnseen(reading: number): void {
    for (const [idInstance, list] of this.fleet) {
      const kept = list.filter((c) => c.seen === reading);
      if (kept.length === 0) this.fleet.delete(idInstance);
      else if (kept.length !== list.length) this.fleet.set(idInstance, kept);
    }
  }

  private async readSome(idInstances: string[]): Promise<Candidate[][]> {
    const { rows } = await this.ctx.sql.query<Row & { sealed: Buffer | null }>({ name: "qrfleet-webhook-tokens-some-v2", text: SOME_SQL, values: [idInstances] });
    const found = new Map<string, Candidate[]>();
    for (const row of rows) {
      const known = this.fleet.get(row.idInstance)?.find((c) => c.id === row.id);
      const digest = known && known.mark === row.mark ? known.digest : this.digestOf(row.id, row.sealed);
      const list = found.get(row.idInstance) ?? [];
      list.push({ id: row.id, digest, mark: row.mark, seen: this.readings });
      found.set(row.idInstance, list);
    }
    return idInstances.map((i) => found.get(i) ?? []);
  }

  /** A stored token that opens under no key of the ring matches nothing: the caller gets the usual refusal, the log says why. */
  private digestOf(instanceId: string, sealed: Buffer | null): Buffer | null {
    if (sealed === null) return null;
    try {
      return sha256(this.ctx.box.open(sealed));
    } catch {
      this.ctx.log.warn({ instanceId }, "the instance's webhook token cannot be decrypted with any configured key; set it again");
      return null;
    }
  }

  /**
   * Why a call was refused goes to the log only: once per instance and reading of the fleet (a
   * flood of forged calls is not a flood of lines), and for an idInstance of no instance at debug.
   */
  private logRefusal(idInstance: string, candidates: Candidate[], presented: string | null): void {
    if (candidates.length === 0) return this.ctx.log.debug({ idInstance, why: "no such instance" }, "provider webhook refused");
    if (this.refusalsLogged.has(idInstance)) return;
    this.refusalsLogged.add(idInstance);
    const why = candidates.every((c) => c.digest === null)
      ? "the instance has no readable webhook token (set one to accept its webhooks)"
      : presented === null ? "no Authorization header" : "a wrong token";
    this.ctx.log.info({ idInstance, why }, "provider webhook refused");
  }
}

/** GREEN-API sends the configured token back as "Bearer <token>"; a raw token is accepted too. */
function presentedToken(header: string | undefined): string | null {
  const value = header?.trim() ?? "";
  if (value === "") return null;
  const bearer = /^Bearer\s+(.+)$/i.exec(value);
  return bearer ? bearer[1]!.trim() : value;
}
