import { createHash } from "node:crypto";
import { ConfigError } from "../../config.js";
import { createPartnerClient, type PartnerListing } from "../../greenapi/partner.js";
import type { FleetContext } from "../context.js";
import { columnArrays, columnParams, INSTANCE_COLUMNS, instanceValues, sealInstances } from "../instances/instance-rows.js";
import { syncCronSchedule } from "../instances/instances.js";
import { planSync, type ChangedField, type FleetRow, type NewRow, type RowUpdate, type SyncEntryError, type SyncPlan } from "./partner-plan.js";
import { providerAgentOf } from "../provider/outbound.js";

/**
 * `qrfleet instance sync`: the fleet made to match a GREEN-API partner account. Every instance the
 * account lists is created or updated (token, label from its name), those it deleted or stopped
 * listing are disabled; run again, it changes nothing. Writes go in batches, so an account of
 * thousands takes a few statements, not thousands.
 */

export interface SyncProgress {
  step: "listed" | "created" | "updated" | "disabled";
  done: number;
  total: number;
}

export interface SyncOptions {
  /** Count what would change; write nothing. */
  dryRun?: boolean;
  onProgress?: (progress: SyncProgress) => void;
  signal?: AbortSignal;
}

export interface SyncChange {
  id: string | null;
  idInstance: string;
  change: "created" | "updated" | "disabled";
  /** For an update: what changed. For a disable: deleted by the account, or no longer listed. */
  detail: ChangedField[] | "deleted" | "unlisted";
}

export interface SyncReport {
  dryRun: boolean;
  /** Entries in the account's listing. */
  listed: number;
  created: number;
  updated: number;
  unchanged: number;
  disabled: number;
  skipped: number;
  errors: SyncEntryError[];
  changes: SyncChange[];
}

export const MISSING_PARTNER_TOKEN =
  "set GREENAPI_PARTNER_TOKEN to the partner token GREEN-API issued for the account (its console's profile, or support@green-api.com)";

const BATCH = 2000;

export async function syncPartnerAccount(ctx: FleetContext, opts: SyncOptions = {}): Promise<SyncReport> {
  const token = ctx.config.GREENAPI_PARTNER_TOKEN;
  if (!token) throw new ConfigError(`missing configuration: ${MISSING_PARTNER_TOKEN}`);
  const client = createPartnerClient({
    partnerApiUrl: ctx.config.GREENAPI_PARTNER_API_URL, partnerToken: token, timeoutMs: ctx.config.QRFLEET_HTTP_TIMEOUT_MS,
    dispatcher: providerAgentOf(ctx),
  });
  const listing = await client.getInstances(opts.signal);
  const listed = listing.instances.length + listing.unreadable.length;
  opts.onProgress?.({ step: "listed", done: listed, total: listed });
  const account = accountOf(token);
  const rows = await fleetRows(ctx, listing, account);
  const plan = planSync({ listing, rows, account, defaultApiUrl: ctx.config.GREENAPI_INSTANCE_API_URL, box: ctx.box });
  const report = reportOf(plan, listed, opts.dryRun ?? false);
  if (opts.dryRun) return report;
  await createRows(ctx, plan, account, report, opts);
  await updateRows(ctx, plan.update, account, opts);
  await disableRows(ctx, plan, opts);
  report.created = report.changes.filter((c) => c.change === "created").length;
  return report;
}

/**
 * Which account listed an instance, without storing its token: a digest of the partner token
 * (high-entropy, so the digest reveals nothing). A new partner token is a new account to it: the
 * next sync takes over what it lists, and only what it listed is disabled later.
 */
export function accountOf(partnerToken: string): string {
  return createHash("sha256").update(`qrfleet partner account:${partnerToken}`).digest("hex").slice(0, 32);
}

async function fleetRows(ctx: FleetContext, listing: PartnerListing, account: string): Promise<FleetRow[]> {
  const ids = [...listing.instances.map((i) => i.idInstance), ...listing.unreadable.flatMap((u) => (u.idInstance ? [u.idInstance] : []))];
  const { rows } = await ctx.sql.query<FleetRow>(
    `SELECT id, "apiUrl", "idInstance", "tokenCiphertext", label, enabled, cron, "partnerAccount" FROM "Instance"
      WHERE "idInstance" = ANY($1::text[]) OR "partnerAccount" = $2`,
    [ids, account],
  );
  return rows;
}

function reportOf(plan: SyncPlan, listed: number, dryRun: boolean): SyncReport {
  const changes: SyncChange[] = [
    ...(dryRun ? plan.create.map((c) => ({ id: null, idInstance: c.idInstance, change: "created" as const, detail: [] })) : []),
    ...plan.update.map((u) => ({ id: u.row.id, idInstance: u.row.idInstance, change: "updated" as const, detail: u.fields })),
    ...plan.disable.map((d) => ({ id: d.row.id, idInstance: d.row.idInstance, change: "disabled" as const, detail: d.why })),
  ];
  return {
    dryRun, listed, created: plan.create.length, updated: plan.update.length, unchanged: plan.unchanged,
    disabled: plan.disable.length, skipped: plan.skipped, errors: [...plan.errors], changes,
  };
}

function* batches<T>(items: T[]): Generator<T[]> {
  for (let i = 0; i < items.length; i += BATCH) yield items.slice(i, i + BATCH);
}

async function createRows(ctx: FleetContext, plan: SyncPlan, account: string, report: SyncReport, opts: SyncOptions): Promise<void> {
  let done = 0;
  for (const batch of batches(plan.create)) {
    opts.signal?.throwIfAborted();
    const rows = sealInstances(batch.map(({ label, ...n }) => ({ ...n, label: label ?? undefined })), (plains) => ctx.box.sealAll(plains), account);
    // An instance added by hand since the listing was read stays as it is; the next sync compares it.
    const made = await ctx.sql.query<{ id: string; idInstance: string }>(
      `INSERT INTO "Instance" (id, ${INSTANCE_COLUMNS}, "updatedAt")
       SELECT gen_random_uuid(), ${instanceValues("v")}, now() FROM unnest(${columnParams(1)}) AS v(${INSTANCE_COLUMNS})
       ON CONFLICT ("apiUrl", "idInstance") DO NOTHING RETURNING id, "idInstance"`,
      columnArrays(rows),
    );
    const idOf = new Map(made.rows.map((m) => [m.idInstance, m.id]));
    for (const n of batch) recordCreate(report, n, idOf.get(n.idInstance));
    opts.onProgress?.({ step: "created", done: (done += batch.length), total: plan.create.length });
  }
}

function recordCreate(report: SyncReport, n: NewRow, id: string | undefined): void {
  if (id) report.changes.push({ id, idInstance: n.idInstance, change: "created", detail: [] });
  else report.errors.push({ idInstance: n.idInstance, message: "was added to the fleet while the sync ran: run it again" });
}

/** One statement per batch; a new token clears the attention flag, as `instance update --token` does. */
async function updateRows(ctx: FleetContext, updates: RowUpdate[], account: string, opts: SyncOptions): Promise<void> {
  let done = 0;
  for (const batch of batches(updates)) {
    opts.signal?.throwIfAborted();
    const tokens = ctx.box.sealAll(batch.flatMap((u) => (u.token === null ? [] : [u.token])));
    let sealed = 0;
    await ctx.sql.query(
      `UPDATE "Instance" AS t SET "apiUrl" = v.api_url, label = v.label,
              "tokenCiphertext" = COALESCE(v.token, t."tokenCiphertext"),
              attention = CASE WHEN v.token IS NULL THEN t.attention ELSE NULL END,
              "partnerAccount" = $5, "updatedAt" = now()
         FROM unnest($1::uuid[], $2::text[], $3::text[], $4::bytea[]) AS v(id, api_url, label, token)
        WHERE t.id = v.id`,
      [
        batch.map((u) => u.row.id), batch.map((u) => u.apiUrl), batch.map((u) => u.label),
        batch.map((u) => (u.token === null ? null : tokens[sealed++])), account,
      ],
    );
    opts.onProgress?.({ step: "updated", done: (done += batch.length), total: updates.length });
  }
}

/** A disabled instance's own schedule goes too: it would only poll an instance nobody pays for. */
async function disableRows(ctx: FleetContext, plan: SyncPlan, opts: SyncOptions): Promise<void> {
  let done = 0;
  for (const batch of batches(plan.disable)) {
    opts.signal?.throwIfAborted();
    const { rows } = await ctx.sql.query<{ id: string; cron: string | null }>(
      `UPDATE "Instance" SET enabled = false, "updatedAt" = now() WHERE id = ANY($1::uuid[]) AND enabled RETURNING id, cron`,
      [batch.map((d) => d.row.id)],
    );
    for (const row of rows) if (row.cron) await syncCronSchedule(ctx, { ...row, enabled: false });
    opts.onProgress?.({ step: "disabled", done: (done += batch.length), total: plan.disable.length });
  }
}
