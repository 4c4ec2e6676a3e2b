/**
 * Conditions that fleet status, the metrics and the dashboard all count by: each is defined once,
 * so `qrfleet status`, `/metrics` and `/admin` cannot disagree.
 */

/** An operator alert that is open: its operators were told and the episode has not ended. `e`: the StateEpisode row. */
export const openAlertSql = (e: string) => `${e}."alertedAt" IS NOT NULL AND ${e}."endedAt" IS NULL`;

/** Seconds the longest-unlinked enabled instance of the group has been unlinked, 0 when none is. */
export const LONGEST_UNLINKED_SECONDS_SQL = `COALESCE(extract(epoch FROM now() - min("unlinkedSince") FILTER (WHERE enabled)), 0)::float8`;
