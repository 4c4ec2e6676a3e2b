import { z } from "zod";
import type { PartnerInstance, PartnerListing } from "../../greenapi/partner.js";
import type { SecretBox } from "../../secrets.js";
import { describeIssues } from "../errors.js";
import { instanceFields } from "../instances/instance-input.js";
import { UNSEEN_CHARACTERS } from "../validate.js";

/**
 * What a partner account's listing means for the fleet, decided without a write: the sync applies
 * it, a dry run only counts it. Instances are matched by idInstance alone, because GREEN-API ids
 * are unique across hosts and the listing does not name a host: an instance added by hand under
 * its sharded apiUrl is the same instance, and keeps that apiUrl.
 */

/** An instance of the fleet as the sync compares it. */
export interface FleetRow {
  id: string;
  apiUrl: string;
  idInstance: string;
  tokenCiphertext: Buffer;
  label: string | null;
  enabled: boolean;
  cron: string | null;
  partnerAccount: string | null;
}

export interface NewRow {
  apiUrl: string;
  idInstance: string;
  token: string;
  label: string | null;
}

export type ChangedField = "apiUrl" | "label" | "token" | "partnerAccount";

export interface RowUpdate {
  row: FleetRow;
  apiUrl: string;
  label: string | null;
  /** The new token, when it changed (or the stored one cannot be opened any more). */
  token: string | null;
  fields: ChangedField[];
}

export interface SyncEntryError {
  idInstance: string | null;
  message: string;
}

export interface SyncPlan {
  create: NewRow[];
  update: RowUpdate[];
  /** Instances the account deleted or no longer lists, still enabled here. */
  disable: Array<{ row: FleetRow; why: "deleted" | "unlisted" }>;
  unchanged: number;
  /** Entries of other messengers, and deleted instances the fleet never had. */
  skipped: number;
  errors: SyncEntryError[];
}

export interface PlanInput {
  listing: PartnerListing;
  /** The fleet's instances with a listed idInstance, and those this account listed before. */
  rows: FleetRow[];
  account: string;
  /** apiUrl of a new instance when the listing does not name its host. */
  defaultApiUrl: string;
  box: SecretBox;
}

const entryFields = z.object({ apiUrl: instanceFields.apiUrl, idInstance: instanceFields.idInstance, token: instanceFields.token });

/** A console name made into a label: characters nobody can see become spaces, and it fits the label's bound. */
function labelOf(name: string | null): string | null {
  const label = (name ?? "").replace(new RegExp(UNSEEN_CHARACTERS.source, "gu"), " ").replace(/ {2,}/g, " ").trim().slice(0, 200).trim();
  return label === "" ? null : label;
}

export function planSync(input: PlanInput): SyncPlan {
  const plan: SyncPlan = { create: [], update: [], disable: [], unchanged: 0, skipped: 0, errors: [] };
  const byId = groupById(input.rows);
  const listed = new Set<string>();
  for (const bad of input.listing.unreadable) {
    if (bad.idInstance !== null) listed.add(bad.idInstance);
    plan.errors.push({ idInstance: bad.idInstance, message: `entry ${bad.index + 1} of the listing cannot be read: ${bad.problem}` });
  }
  for (const entry of input.listing.instances) {
    if (listed.has(entry.idInstance)) {
      plan.errors.push({ idInstance: entry.idInstance, message: "listed more than once: only its first entry was used" });
      continue;
    }
    listed.add(entry.idInstance);
    planEntry(plan, input, entry, byId.get(entry.idInstance) ?? []);
  }
  planUnlisted(plan, input, listed);
  return plan;
}

function groupById(rows: FleetRow[]): Map<string, FleetRow[]> {
  const byId = new Map<string, FleetRow[]>();
  for (const row of rows) byId.set(row.idInstance, [...(byId.get(row.idInstance) ?? []), row]);
  return byId;
}

function planEntry(plan: SyncPlan, input: PlanInput, entry: PartnerInstance, matches: FleetRow[]): void {
  // QR linking is WhatsApp's; the partner API also lists Telegram, MAX and other instances.
  if (entry.typeInstance !== null && entry.typeInstance !== "whatsapp") return void (plan.skipped += 1);
  if (matches.length > 1) {
    const hosts = matches.map((m) => m.apiUrl).join(", ");
    return void plan.errors.push({ idInstance: entry.idInstance, message: `the fleet has it under several apiUrls (${hosts}): remove all but one` });
  }
  const row = matches[0];
  if (entry.deleted) {
    if (!row) plan.skipped += 1;
    else if (row.enabled) plan.disable.push({ row, why: "deleted" });
    else plan.unchanged += 1;
    return;
  }
  const parsed = entryFields.safeParse({ apiUrl: entry.apiUrl ?? row?.apiUrl ?? input.defaultApiUrl, idInstance: entry.idInstance, token: entry.token });
  if (!parsed.success) return void plan.errors.push({ idInstance: entry.idInstance, message: describeIssues(parsed.error.issues) });
  const wanted: NewRow = { ...parsed.data, label: labelOf(entry.name) };
  if (!row) return void plan.create.push(wanted);
  const update = compare(input, row, wanted);
  if (update.fields.length > 0) plan.update.push(update);
  else plan.unchanged += 1;
}

function compare(input: PlanInput, row: FleetRow, wanted: NewRow): RowUpdate {
  const fields: ChangedField[] = [];
  if (wanted.apiUrl !== row.apiUrl) fields.push("apiUrl");
  if (wanted.label !== row.label) fields.push("label");
  if (openToken(input.box, row) !== wanted.token) fields.push("token");
  if (row.partnerAccount !== input.account) fields.push("partnerAccount");
  return { row, apiUrl: wanted.apiUrl, label: wanted.label, token: fields.includes("token") ? wanted.token : null, fields };
}

/** A token sealed under a key no longer configured counts as changed: the listing's one replaces it. */
function openToken(box: SecretBox, row: FleetRow): string | null {
  try {
    return box.open(row.tokenCiphertext);
  } catch {
    return null;
  }
}

const count = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

function planUnlisted(plan: SyncPlan, input: PlanInput, listed: Set<string>): void {
  const blind = input.listing.unreadable.filter((u) => u.idInstance === null).length;
  const gone = input.rows.filter((r) => r.partnerAccount === input.account && r.enabled && !listed.has(r.idInstance));
  if (gone.length === 0) return;
  if (blind > 0) {
    // An entry without a readable idInstance could be any of them: disabling on a guess is worse than waiting.
    const message = `left enabled ${count(gone.length, "instance")} no longer listed: ${count(blind, "entry", "entries")} of the listing had no readable idInstance`;
    plan.errors.push({ idInstance: null, message });
    return;
  }
  for (const row of gone) plan.disable.push({ row, why: "unlisted" });
}
