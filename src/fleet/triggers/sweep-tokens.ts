import type { FleetContext } from "../context.js";

/**
 * The instance tokens the sweep polls with, opened once and kept by instance. An instance is
 * polled every interval, and opening its token each time was a tenth of a poll's CPU; reading its
 * sealed bytes each time cost more than the poll's own answer. So a sweep reads only a fingerprint
 * of each sealed token (an md5 PostgreSQL takes), and fetches and opens, one statement for a page,
 * only the tokens whose fingerprint is new: a token set again, or re-sealed by a key rotation.
 */

/** What the sweep reads of an instance's token: `md5("tokenCiphertext")`. */
export const TOKEN_MARK_COLUMN = `md5(i."tokenCiphertext") AS "tokenMark"`;

const SEALED_SQL = `SELECT id::text AS id, md5("tokenCiphertext") AS mark, "tokenCiphertext" AS sealed FROM "Instance" WHERE id = ANY($1::uuid[])`;

/** A token opened: null when it opens under no key of the ring, undefined for an instance gone. */
export type OpenedToken = string | null | undefined;

interface Opened {
  mark: string;
  /** null: the sealed token opens under no key of the ring. */
  token: string | null;
}

export class SweepTokens {
  private readonly opened = new Map<string, Opened>();

  constructor(private readonly ctx: FleetContext) {}

  /**
   * Opens the tokens of these instances that are not open under their current fingerprint, and
   * gives each target's token in the same order (as `latestOf`): one map lookup per target.
   */
  async prepare(targets: ReadonlyArray<{ id: string; tokenMark: string }>): Promise<OpenedToken[]> {
    const tokens = targets.map((t) => this.openedFor(t));
    const stale = targets.filter((_, i) => tokens[i] === undefined).map((t) => t.id);
    if (stale.length === 0) return tokens;
    const { rows } = await this.ctx.sql.query<{ id: string; mark: string; sealed: Buffer }>(SEALED_SQL, [stale]);
    for (const { id, mark, sealed } of rows) this.opened.set(id, { mark, token: this.open(sealed) });
    return targets.map((t, i) => (tokens[i] === undefined ? this.latestOf(t.id) : tokens[i]));
  }

  /** The token opened under this fingerprint (null: it opens under no key); undefined if it is not opened yet. */
  openedFor(target: { id: string; tokenMark: string }): OpenedToken {
    const opened = this.opened.get(target.id);
    return opened?.mark === target.tokenMark ? opened.token : undefined;
  }

  /** The token last opened (after `prepare`, the newest), whatever the fingerprint; undefined for an instance gone. */
  latestOf(id: string): OpenedToken {
    return this.opened.get(id)?.token;
  }

  private open(sealed: Buffer): string | null {
    try {
      return this.ctx.box.open(sealed);
    } catch {
      return null;
    }
  }
}

const tokens = new WeakMap<FleetContext, SweepTokens>();

/** The tokens this context's sweeps share. */
export function sweepTokensOf(ctx: FleetContext): SweepTokens {
  let t = tokens.get(ctx);
  if (!t) tokens.set(ctx, (t = new SweepTokens(ctx)));
  return t;
}
