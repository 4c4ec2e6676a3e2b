import type { SessionStatus } from "../../db.js";
import { shownAddress } from "../../outbound.js";
import { maskSecrets } from "../../log.js";
import type { FleetContext } from "../context.js";
import { openAlertSql } from "./fleet-sql.js";

/** What the admin dashboard lists: one page of instances, one row each, and the channels in trouble. */

export const DASHBOARD_PAGE_SIZE = 50;
/** The filter value for instances never polled (`lastState` still null), named as fleet status names them. */
export const NEVER_CHECKED = "unchecked";

export interface DashboardFilter {
  /** A provider state, or NEVER_CHECKED. */
  state?: string;
  /** Substring of the label (any case) or of idInstance. */
  q?: string;
  /** Only instances with an open alert. */
  alert?: boolean;
  /** Only instances unlinked since then (a fleet incident links here). */
  unlinkedSince?: Date;
  /** 1-based. */
  page: number;
}

export interface DashboardRow {
  id: string;
  idInstance: string;
  label: string | null;
  lastState: string | null;
  unlinkedSince: Date | null;
  enabled: boolean;
  attention: string | null;
  session: { id: string; status: SessionStatus; attempt: number; maxAttempts: number } | null;
  /** Provider states of the instance's open alerts. */
  alerts: string[];
}

export interface DashboardPage {
  rows: DashboardRow[];
  /** Instances matching the filter, over all pages. */
  total: number;
}

export interface TroubledChannel {
  operator: string;
  kind: string;
  address: string;
  enabled: boolean;
  failingSince: Date | null;
  disabledReason: string | null;
  disabledAt: Date | null;
}

/*
 * One round trip per page whatever the fleet's size: the filter runs once, the count and the page
 * come from it, and the latest session and open alerts are looked up for the page's rows only
 * (through the (instanceId, createdAt) and (instanceId, since) indexes).
 */
const PAGE_SQL = `
  WITH filtered AS (
    SELECT i.id, i."idInstance", i.label, i."lastState", i."unlinkedSince", i.enabled, i.attention
    FROM "Instance" i
    WHERE ($1::text IS NULL OR ($1 = '${NEVER_CHECKED}' AND i."lastState" IS NULL) OR i."lastState" = $1)
      AND ($2::text IS NULL OR strpos(lower(COALESCE(i.label, '')), lower($2)) > 0 OR strpos(i."idInstance", $2) > 0)
      AND (NOT $3::boolean OR EXISTS (
        SELECT 1 FROM "StateEpisode" e WHERE e."instanceId" = i.id AND ${openAlertSql("e")}))
      AND ($6::timestamptz IS NULL OR i."unlinkedSince" >= $6)
  ), page AS (
    SELECT * FROM filtered ORDER BY "unlinkedSince" ASC NULLS LAST, "idInstance", id LIMIT $4 OFFSET $5
  )
  SELECT p.*, (SELECT count(*) FROM filtered)::int AS total,
    s.id AS "sessionId", s.status AS "sessionStatus", s.attempt, s."maxAttempts", COALESCE(a.states, '{}') AS alerts
  FROM page p
  LEFT JOIN LATERAL (
    SELECT q.id, q.status, q.attempt, q."maxAttempts" FROM "QrSession" q
    WHERE q."instanceId" = p.id ORDER BY q."createdAt" DESC LIMIT 1) s ON true
  LEFT JOIN LATERAL (
    SELECT array_agg(DISTINCT e.state ORDER BY e.state) AS states FROM "StateEpisode" e
    WHERE e."instanceId" = p.id AND ${openAlertSql("e")}) a ON true
  ORDER BY p."unlinkedSince" ASC NULLS LAST, p."idInstance", p.id`;

type PageRow = Omit<DashboardRow, "session"> & {
  total: number;
  sessionId: string | null;
  sessionStatus: SessionStatus | null;
  attempt: number | null;
  maxAttempts: number | null;
};

/** The instances longest unlinked first, then by idInstance. A page past the last is empty, with the total. */
export async function dashboardPage(ctx: FleetContext, f: DashboardFilter): Promise<DashboardPage> {
  const offset = (f.page - 1) * DASHBOARD_PAGE_SIZE;
  const params = [f.state ?? null, f.q ?? null, f.alert ?? false, DASHBOARD_PAGE_SIZE, offset, f.unlinkedSince ?? null];
  const { rows } = await ctx.sql.query<PageRow>(PAGE_SQL, params);
  const total = rows[0]?.total ?? (await countOnly(ctx, params));
  return {
    total,
    rows: rows.map(({ total: _t, sessionId, sessionStatus, attempt, maxAttempts, ...r }) => ({
      ...r,
      session: sessionId ? { id: sessionId, status: sessionStatus!, attempt: attempt!, maxAttempts: maxAttempts! } : null,
    })),
  };
}

/** Past the last page no row carries the total; the first page does. */
async function countOnly(ctx: FleetContext, params: unknown[]): Promise<number> {
  const { rows } = await ctx.sql.query<PageRow>(PAGE_SQL, [...params.slice(0, 3), 1, 0, params[5]]);
  return rows[0]?.total ?? 0;
}

/** The channels fleet status counts as failing or disabled, with their operator; addresses as the CLI shows them. */
const CHANNELS_SQL = `
  SELECT o.name AS operator, c.kind, c.address, c.enabled, c."failingSince", c."disabledReason", c."disabledAt"
  FROM "Channel" c JOIN "Operator" o ON o.id = c."operatorId"
  WHERE NOT c.enabled OR c."failingSince" IS NOT NULL
  ORDER BY c.enabled, COALESCE(c."disabledAt", c."failingSince") ASC, o.name
  LIMIT $1`;

export async function troubledChannels(ctx: FleetContext, limit = 200): Promise<TroubledChannel[]> {
  const { rows } = await ctx.sql.query<TroubledChannel>(CHANNELS_SQL, [limit]);
  return rows.map((c) => ({ ...c, address: shownAddress(maskSecrets(c.address)) }));
}
