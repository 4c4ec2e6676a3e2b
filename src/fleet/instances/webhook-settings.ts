import { createHash, randomBytes } from "node:crypto";
import { z } from "zod";
import type { Config } from "../../config.js";
import type { Instance, Prisma } from "../../db.js";
import type { WebhookSettings } from "../../greenapi/settings.js";
import { sameSecret } from "../../secrets.js";
import type { FleetContext } from "../context.js";
import { FleetError } from "../errors.js";
import { providerFor, UNREADABLE_TOKEN, type Provider } from "../provider/provider.js";
import { findOpenSession } from "./open-session.js";

/**
 * What an instance's provider settings say of its webhook, from qrfleet's side: nobody's, ours,
 * ours but not all of it, or someone else's (a customer's own receiver, which must never be
 * taken over). A foreign URL is shown by its host only and kept as nothing more than its host and
 * a digest of its address without credentials or query: it may carry the customer's secrets.
 */

export const WEBHOOK_SETUPS = ["unset", "ours", "ours_incomplete", "foreign"] as const;
export type WebhookSetup = (typeof WEBHOOK_SETUPS)[number];

/** One reading of the settings in words that carry no secret: what is stored, compared and shown. */
export interface SettingsSeen {
  setup: WebhookSetup;
  /** A foreign webhookUrl's host (no credentials, path or query); null otherwise. */
  host: string | null;
  /** "" (none), "ours", or a digest of a foreign URL's origin and path: equal when the URL is. */
  address: string;
  /** The webhookUrlToken by what it is, never by its value. */
  token: "none" | "ours" | "other";
  stateWebhook: boolean;
}

const seenSchema = z.object({
  setup: z.enum(WEBHOOK_SETUPS),
  host: z.string().nullable(),
  address: z.string(),
  token: z.enum(["none", "ours", "other"]),
  stateWebhook: z.boolean(),
});

/** Where the provider's state webhook reaches this fleet: `${QRFLEET_PUBLIC_URL}/hooks/greenapi`. */
export function fleetHookUrl(config: Pick<Config, "QRFLEET_PUBLIC_URL">): string {
  return `${config.QRFLEET_PUBLIC_URL.replace(/\/+$/, "")}/hooks/greenapi`;
}

/** A fresh webhook token for one instance: the provider sends it back with every webhook. */
export const newWebhookToken = (): string => randomBytes(24).toString("hex");

/** The instance's stored webhook token, or null when it has none or it opens under no configured key. */
export function storedWebhookToken(ctx: FleetContext, inst: Pick<Instance, "webhookTokenCiphertext">): string | null {
  if (!inst.webhookTokenCiphertext) return null;
  try {
    return ctx.box.open(inst.webhookTokenCiphertext);
  } catch {
    return null;
  }
}

export function assessSettings(settings: WebhookSettings, ours: { url: string; token: string | null }): SettingsSeen {
  const url = parsed(settings.webhookUrl);
  const isOurs = url !== null && sameAddress(url, parsed(ours.url));
  const token = settings.webhookUrlToken === "" ? "none" : ours.token !== null && sameSecret(settings.webhookUrlToken, ours.token) ? "ours" : "other";
  const { stateWebhook } = settings;
  if (settings.webhookUrl === "") return { setup: "unset", host: null, address: "", token, stateWebhook };
  if (!isOurs) {
    const where = url ? `${url.origin}${url.pathname}` : "(not a URL)";
    return { setup: "foreign", host: url?.host ?? "(not a URL)", address: digest(where).slice(0, 16), token, stateWebhook };
  }
  return { setup: stateWebhook && token === "ours" ? "ours" : "ours_incomplete", host: null, address: "ours", token, stateWebhook };
}

/** Equal fingerprints, same webhook address, token and flag. */
export function fingerprintOf(seen: SettingsSeen): string {
  return digest(JSON.stringify([seen.address, seen.token, seen.stateWebhook]));
}

const digest = (text: string) => createHash("sha256").update(text).digest("hex");

function parsed(url: string): URL | null {
  try {
    return new URL(url);
  } catch {
    return null;
  }
}

/** Same scheme, host, port, path (a trailing slash aside) and query, and no credentials in either. */
function sameAddress(a: URL, b: URL | null): boolean {
  if (!b || a.username !== "" || a.password !== "") return false;
  const key = (u: URL) => `${u.protocol}//${u.host}${u.pathname.replace(/\/+$/, "")}${u.search}`;
  return key(a) === key(b);
}

/** What changed between two readings, in the provider's names of the settings. */
export function settingsChanges(before: SettingsSeen, after: SettingsSeen): Array<"webhookUrl" | "webhookUrlToken" | "stateWebhook"> {
  return [
    ...(before.address !== after.address ? (["webhookUrl"] as const) : []),
    ...(before.token !== after.token ? (["webhookUrlToken"] as const) : []),
    ...(before.stateWebhook !== after.stateWebhook ? (["stateWebhook"] as const) : []),
  ];
}

/** A stored reading, or null when there is none (or it does not read as one). */
export function storedSeen(value: Prisma.JsonValue | null): SettingsSeen | null {
  const read = seenSchema.safeParse(value);
  return read.success ? read.data : null;
}

/** The columns that record a reading. */
export function seenColumns(seen: SettingsSeen, at = new Date()) {
  return { webhookSetup: seen.setup, settingsFingerprint: fingerprintOf(seen), settingsSeen: { ...seen }, settingsCheckedAt: at };
}

/** What reading and writing an instance's settings needs of its row. */
export type SettingsInstance = Pick<Instance, "id" | "apiUrl" | "idInstance" | "tokenCiphertext" | "webhookTokenCiphertext">;

function reach(ctx: FleetContext, inst: SettingsInstance): Provider {
  const provider = providerFor(ctx, inst);
  if (!provider) throw new FleetError("unreadable_token", 409, UNREADABLE_TOKEN);
  return provider;
}

/** Reads the instance's settings (getSettings) as qrfleet sees them. */
export async function observeSettings(ctx: FleetContext, inst: SettingsInstance, signal?: AbortSignal): Promise<SettingsSeen> {
  const settings = await reach(ctx, inst).client.getSettings(signal);
  return assessSettings(settings, { url: fleetHookUrl(ctx.config), token: storedWebhookToken(ctx, inst) });
}

/** Reads the instance's settings and records the reading. */
export async function readSettings(ctx: FleetContext, inst: SettingsInstance, signal?: AbortSignal): Promise<SettingsSeen> {
  const seen = await observeSettings(ctx, inst, signal);
  await ctx.db.instance.update({ where: { id: inst.id }, data: seenColumns(seen) });
  return seen;
}

/** setSettings pointing the instance's webhook at this fleet with `token`: true when the provider says it saved them. */
export function pointAtFleet(ctx: FleetContext, inst: SettingsInstance, token: string, signal?: AbortSignal): Promise<boolean> {
  return reach(ctx, inst).client.setSettings({ webhookUrl: fleetHookUrl(ctx.config), webhookUrlToken: token, stateWebhook: true }, signal);
}

/** setSettings reboots the instance: never while a session holds its QR socket or waits for one. */
export async function hasOpenSession(ctx: FleetContext, instanceId: string): Promise<boolean> {
  return (await findOpenSession(ctx, instanceId)) !== null;
}
