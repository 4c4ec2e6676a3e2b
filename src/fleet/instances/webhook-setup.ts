import { setTimeout as sleep } from "node:timers/promises";
import pMap from "p-map";
import { GreenApiError } from "../../greenapi/errors.js";
import { maskSecrets } from "../../log.js";
import type { FleetContext } from "../context.js";
import { FleetError } from "../errors.js";
import { announceInstanceChanges } from "./instance-changes.js";
import {
  fleetHookUrl, hasOpenSession, newWebhookToken, pointAtFleet, readSettings, WEBHOOK_SETUPS,
  type SettingsInstance, type WebhookSetup,
} from "./webhook-settings.js";

/**
 * `qrfleet instance webhooks`: every enabled instance's webhook settings read (--plan) and, with
 * --apply, pointed at this fleet where that takes nothing from anyone: only where no webhook is
 * set or ours is set incompletely, never while a session is open (setSettings reboots the
 * instance), never over a customer's own receiver. Each change is read back after the reboot.
 */

export const SETUP_RESULTS = ["applied", "not_applied", "refused", "failed", "skipped_session", "skipped_foreign", "unchanged"] as const;
export type SetupResult = (typeof SETUP_RESULTS)[number];

export interface WebhookRow {
  id: string;
  idInstance: string;
  label: string | null;
  /** What the settings said when read; "error" when they could not be read. */
  setup: WebhookSetup | "error";
  /** A foreign webhook's host: all that is shown of someone else's URL. */
  host: string | null;
  /** With apply: what was done. */
  result?: SetupResult;
  error?: { code: string; message: string };
}

export interface WebhookReport {
  apply: boolean;
  /** Where ours points: `${QRFLEET_PUBLIC_URL}/hooks/greenapi`. */
  hookUrl: string;
  instances: WebhookRow[];
  totals: Record<WebhookSetup | "error" | SetupResult, number> & { instances: number };
  /** Something could not be read or set, or a change did not stick. */
  failed: boolean;
}

export interface WebhookProgress {
  step: "read" | "set" | "verified";
  done: number;
  total: number;
}

export interface WebhookOptions {
  apply: boolean;
  onProgress?: (p: WebhookProgress) => void;
  signal?: AbortSignal;
}

type Candidate = SettingsInstance & { label: string | null };

export async function reviewWebhooks(ctx: FleetContext, opts: WebhookOptions): Promise<WebhookReport> {
  const instances: Candidate[] = await ctx.db.instance.findMany({
    where: { enabled: true },
    select: { id: true, apiUrl: true, idInstance: true, label: true, tokenCiphertext: true, webhookTokenCiphertext: true },
    orderBy: { id: "asc" },
  });
  const rows = await eachPaced(ctx, instances, "read", opts, (inst) => readRow(ctx, inst, opts.signal));
  if (opts.apply) await applyRows(ctx, instances, rows, opts);
  return reportOf(ctx, opts.apply, rows);
}

/** Bounded concurrency over the fleet; each instance's own pace is the REST client's (one call a second per method). */
async function eachPaced<T, R>(ctx: FleetContext, items: readonly T[], step: WebhookProgress["step"], opts: WebhookOptions, fn: (item: T) => Promise<R>): Promise<R[]> {
  let done = 0;
  return pMap(items, async (item) => {
    const out = await fn(item);
    opts.onProgress?.({ step, done: ++done, total: items.length });
    return out;
  }, { concurrency: ctx.config.QRFLEET_SETTINGS_CONCURRENCY, signal: opts.signal });
}

async function readRow(ctx: FleetContext, inst: Candidate, signal?: AbortSignal): Promise<WebhookRow> {
  const row: WebhookRow = { id: inst.id, idInstance: inst.idInstance, label: inst.label, setup: "error", host: null };
  try {
    const seen = await readSettings(ctx, inst, signal);
    return { ...row, setup: seen.setup, host: seen.host };
  } catch (err) {
    return { ...row, error: errorOf(err) };
  }
}

/** Sets ours where allowed, then reads each change back once its reboot has had QRFLEET_SETTINGS_VERIFY_AFTER_MS. */
async function applyRows(ctx: FleetContext, instances: readonly Candidate[], rows: WebhookRow[], opts: WebhookOptions): Promise<void> {
  const byId = new Map(instances.map((i) => [i.id, i]));
  for (const row of rows) if (row.setup === "foreign") row.result = "skipped_foreign";
  for (const row of rows) if (row.setup === "ours") row.result = "unchanged";
  const wanted = rows.filter((r) => r.setup === "unset" || r.setup === "ours_incomplete");
  const set = await eachPaced(ctx, wanted, "set", opts, (row) => setRow(ctx, byId.get(row.id)!, row, opts.signal));
  const toVerify = set.filter((s): s is { row: WebhookRow; at: number } => s !== null);
  await eachPaced(ctx, toVerify, "verified", opts, async ({ row, at }) => {
    const wait = at + ctx.config.QRFLEET_SETTINGS_VERIFY_AFTER_MS - Date.now();
    if (wait > 0) await sleep(wait, undefined, { signal: opts.signal });
    await verifyRow(ctx, byId.get(row.id)!, row, opts.signal);
  });
}

/** One instance pointed at this fleet with a fresh token; the time it was set, or null when it was not. */
async function setRow(ctx: FleetContext, inst: Candidate, row: WebhookRow, signal?: AbortSignal): Promise<{ row: WebhookRow; at: number } | null> {
  if (await hasOpenSession(ctx, inst.id)) {
    row.result = "skipped_session";
    return null;
  }
  const token = newWebhookToken();
  // Sealed and announced to every daemon before the call: a token the provider may already send back is one the fleet knows.
  const sealed = ctx.box.seal(token);
  await ctx.db.instance.update({ where: { id: inst.id }, data: { webhookTokenCiphertext: sealed } });
  inst.webhookTokenCiphertext = sealed;
  await announceInstanceChanges(ctx, [inst.idInstance]);
  try {
    const saved = await pointAtFleet(ctx, inst, token, signal);
    row.result = saved ? undefined : "refused";
    if (!saved) row.error = { code: "refused", message: "the provider answered saveSettings: false" };
    return saved ? { row, at: Date.now() } : null;
  } catch (err) {
    row.result = "failed";
    row.error = errorOf(err);
    return null;
  }
}

async function verifyRow(ctx: FleetContext, inst: Candidate, row: WebhookRow, signal?: AbortSignal): Promise<void> {
  try {
    const seen = await readSettings(ctx, inst, signal);
    row.result = seen.setup === "ours" ? "applied" : "not_applied";
    if (seen.setup !== "ours") row.error = { code: "not_applied", message: `the provider answered true, but its settings still read ${seen.setup}` };
  } catch (err) {
    row.result = "failed";
    row.error = errorOf(err);
  }
}

function errorOf(err: unknown): { code: string; message: string } {
  if (err instanceof GreenApiError || err instanceof FleetError) return { code: err.code, message: err.message };
  return { code: "error", message: maskSecrets(err instanceof Error ? err.message : String(err)) };
}

const FAILED: ReadonlySet<SetupResult> = new Set(["not_applied", "refused", "failed"]);

function reportOf(ctx: FleetContext, apply: boolean, rows: WebhookRow[]): WebhookReport {
  const keys = [...WEBHOOK_SETUPS, "error", ...SETUP_RESULTS] as const;
  const totals = Object.fromEntries(keys.map((k) => [k, 0])) as WebhookReport["totals"];
  totals.instances = rows.length;
  for (const row of rows) {
    totals[row.setup] += 1;
    if (row.result) totals[row.result] += 1;
  }
  const failed = rows.some((r) => r.setup === "error" || (r.result !== undefined && FAILED.has(r.result)));
  return { apply, hookUrl: fleetHookUrl(ctx.config), instances: rows, totals, failed };
}
