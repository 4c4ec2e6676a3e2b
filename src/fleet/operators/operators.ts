import { randomBytes } from "node:crypto";
import { z } from "zod";
import { isUniqueViolation, type ChannelKind, type DeliveryMode } from "../../db.js";
import { KINDS_DIGESTED_FLEET_WIDE } from "../../notify/kinds/index.js";
import type { FleetContext } from "../context.js";
import { ConflictError, NotFoundError } from "../errors.js";
import { parseInput, requiredText } from "../validate.js";
import { isUuid } from "../../lib/uuid.js";
import { outboundProblem, shownAddress } from "../../outbound.js";

/** Operators receive the QR of the instances assigned to them through their channels. */

/** What these functions use of the fleet: the database, and the box that seals webhook secrets. */
type Operators = Pick<FleetContext, "db" | "box">;
type Rows = Pick<FleetContext, "db">;

export interface ChannelView {
  id: string;
  kind: ChannelKind;
  /** Email address or webhook URL. The webhook secret is never part of a view. */
  address: string;
  enabled: boolean;
  /** Why and when qrfleet disabled it (a 410 Gone, failing for too long); null while enabled. */
  disabledReason: string | null;
  disabledAt: Date | null;
  /** immediate: each event as it happens; digest: grouped (QRFLEET_DIGEST_WINDOW_MS, QRFLEET_DIGEST_INTERVAL_MS). */
  mode: DeliveryMode;
  /** False: `mode` is the default for its place (digest for a fleet-wide operator's email), not an admin's choice. */
  modeSet: boolean;
}

export interface OperatorView {
  id: string;
  name: string;
  createdAt: Date;
  channels: ChannelView[];
  assignments: Array<{ instanceId: string; tier: number }>;
}

export interface OperatorInput {
  name: string;
  email?: string;
  webhook?: string;
  /** A Standard Webhooks secret `whsec_<base64>`; generated when omitted. */
  webhookSecret?: string;
}

export interface AddedOperator {
  operator: OperatorView;
  /**
   * A generated webhook signing secret: returned here once, stored only sealed. Null without a
   * webhook, and when the caller gave its own: an answer never repeats a secret it was sent.
   */
  webhookSecret: string | null;
}

export type ChannelInput = { kind: "email"; address: string } | { kind: "webhook"; address: string; secret?: string };

export interface AddedChannel {
  channel: ChannelView;
  /** As for AddedOperator: a generated secret, once; null otherwise. */
  webhookSecret: string | null;
}

export interface Assignment {
  instanceId: string;
  operatorId: string;
  tier: number;
}

/** Highest escalation tier; tiers beyond a handful only delay who hears about a dead instance. */
export const MAX_TIER = 10;
const SECRET_BYTES = 32;

const nameSchema = requiredText(100);
const emailSchema = z.string().trim().pipe(z.email("must be an email address"));
const webhookSchema = z
  .string()
  .trim()
  .pipe(z.url({ protocol: /^https?$/, message: "must be an http:// or https:// URL" }))
  .transform((v, ctx) => {
    // Zod runs this even after the URL check failed: a URL that does not parse (an IPv6 zone id) is already reported.
    const url = URL.canParse(v) ? new URL(v) : null;
    const problem = url ? outboundProblem(url) : null;
    if (problem) ctx.addIssue({ code: "custom", message: problem });
    // Stored as it will be called: http://2130706433/ is http://127.0.0.1/.
    return url?.href ?? v;
  });
// Standard Webhooks: the secret is base64 of 24 to 64 random bytes, prefixed with whsec_.
const secretSchema = z.string().refine(isValidWebhookSecret, {
  message: "must be whsec_ followed by base64 of 24 to 64 bytes",
});

export const operatorSchema = z
  .object({ name: nameSchema, email: emailSchema.optional(), webhook: webhookSchema.optional(), webhookSecret: secretSchema.optional() })
  .refine((v) => v.email !== undefined || v.webhook !== undefined, { message: "give an email, a webhook or both", path: [] })
  .refine((v) => v.webhookSecret === undefined || v.webhook !== undefined, {
    message: "needs a webhook URL",
    path: ["webhookSecret"],
  });

export const channelSchema = z.discriminatedUnion("kind", [
  z.object({ kind: z.literal("email"), address: emailSchema }),
  z.object({ kind: z.literal("webhook"), address: webhookSchema, secret: secretSchema.optional() }),
]);

const tierSchema = z.object({ tier: z.number().int("must be a whole number").min(1, "must be at least 1").max(MAX_TIER, `must be at most ${MAX_TIER}`) });

export function isValidWebhookSecret(secret: string): boolean {
  const m = /^whsec_([A-Za-z0-9+/]+={0,2})$/.exec(secret);
  if (!m?.[1]) return false;
  const bytes = Buffer.from(m[1], "base64").length;
  return bytes >= 24 && bytes <= 64;
}

export function generateWebhookSecret(): string {
  return `whsec_${randomBytes(SECRET_BYTES).toString("base64")}`;
}

const viewInclude = {
  channels: { orderBy: { createdAt: "asc" as const } },
  assignments: { orderBy: { createdAt: "asc" as const } },
};

/** A channel as stored: the view's fields, with the mode an admin set (null: the default). */
type ChannelRow = Omit<ChannelView, "mode" | "modeSet"> & { mode: DeliveryMode | null };

type OperatorRow = {
  id: string;
  name: string;
  createdAt: Date;
  channels: ChannelRow[];
  assignments: Array<{ instanceId: string; tier: number }>;
};

/** `fleetWide`: the operator has no instance of its own, so it hears of every unassigned one (notify/routing.ts). */
function channelView(c: ChannelRow, fleetWide: boolean): ChannelView {
  const mode = c.mode ?? (fleetWide && KINDS_DIGESTED_FLEET_WIDE.includes(c.kind) ? "digest" : "immediate");
  return {
    id: c.id, kind: c.kind, address: shownAddress(c.address), enabled: c.enabled, disabledReason: c.disabledReason, disabledAt: c.disabledAt,
    mode, modeSet: c.mode !== null,
  };
}

function toView(row: OperatorRow): OperatorView {
  return {
    id: row.id,
    name: row.name,
    createdAt: row.createdAt,
    channels: row.channels.map((c) => channelView(c, row.assignments.length === 0)),
    assignments: row.assignments.map((a) => ({ instanceId: a.instanceId, tier: a.tier })),
  };
}

export async function addOperator({ db, box }: Operators, input: OperatorInput): Promise<AddedOperator> {
  const v = parseInput(operatorSchema, input);
  const webhookSecret = v.webhook === undefined ? null : (v.webhookSecret ?? generateWebhookSecret());
  const channels = [
    ...(v.email === undefined ? [] : [{ kind: "email" as const, address: v.email }]),
    ...(v.webhook === undefined || webhookSecret === null
      ? []
      : [{ kind: "webhook" as const, address: v.webhook, secretCiphertext: box.seal(webhookSecret) }]),
  ];
  try {
    const row = await db.operator.create({ data: { name: v.name, channels: { create: channels } }, include: viewInclude });
    return { operator: toView(row), webhookSecret: v.webhookSecret === undefined ? webhookSecret : null };
  } catch (err) {
    if (isUniqueViolation(err)) throw new ConflictError(`an operator named "${v.name}" already exists`);
    throw err;
  }
}

/** Adds another email address or webhook endpoint to an existing operator. */
export async function addChannel({ db, box }: Operators, operatorRef: string, input: ChannelInput): Promise<AddedChannel> {
  const v = parseInput(channelSchema, input);
  const operator = await getOperator({ db }, operatorRef);
  const webhookSecret = v.kind === "webhook" ? (v.secret ?? generateWebhookSecret()) : null;
  try {
    const c = await db.channel.create({
      data: {
        operatorId: operator.id,
        kind: v.kind,
        address: v.address,
        secretCiphertext: webhookSecret === null ? null : box.seal(webhookSecret),
      },
    });
    const fleetWide = operator.assignments.length === 0;
    return { channel: { ...channelView(c, fleetWide), address: c.address }, webhookSecret: v.kind === "webhook" && v.secret === undefined ? webhookSecret : null };
  } catch (err) {
    if (isUniqueViolation(err)) throw new ConflictError(`operator "${operator.name}" already has this ${v.kind} channel`);
    throw err;
  }
}

/** An operator's channels and how many instances it has: what the dashboard lists, without the assignments themselves. */
export interface OperatorChannels {
  id: string;
  name: string;
  instances: number;
  channels: ChannelView[];
}

export async function listOperatorChannels({ db }: Rows, limit = 200): Promise<OperatorChannels[]> {
  const rows = await db.operator.findMany({
    include: { channels: { orderBy: { createdAt: "asc" } }, _count: { select: { assignments: true } } },
    orderBy: { name: "asc" },
    take: limit,
  });
  return rows.map((o) => ({
    id: o.id, name: o.name, instances: o._count.assignments, channels: o.channels.map((c) => channelView(c, o._count.assignments === 0)),
  }));
}

export async function listOperators({ db }: Rows): Promise<OperatorView[]> {
  const rows = await db.operator.findMany({ include: viewInclude, orderBy: { name: "asc" } });
  return rows.map(toView);
}

/** `ref` is an operator id or name; an id wins when a name happens to look like one. */
export async function getOperator({ db }: Rows, ref: string): Promise<OperatorView> {
  const row = await findOperator(db, ref);
  if (!row) throw new NotFoundError(`no operator "${ref}"`);
  return toView(row);
}

async function findOperator(db: Rows["db"], ref: string) {
  const trimmed = ref.trim();
  if (isUuid(trimmed)) {
    const byId = await db.operator.findUnique({ where: { id: trimmed }, include: viewInclude });
    if (byId) return byId;
  }
  return db.operator.findUnique({ where: { name: trimmed }, include: viewInclude });
}

/** Deletes the operator with its channels, assignments and their pending deliveries. */
export async function removeOperator({ db }: Rows, ref: string): Promise<OperatorView> {
  const operator = await getOperator({ db }, ref);
  const { count } = await db.operator.deleteMany({ where: { id: operator.id } });
  if (count === 0) throw new NotFoundError(`no operator "${ref}"`);
  return operator;
}

async function requireInstance(db: Rows["db"], instanceId: string): Promise<void> {
  const found = isUuid(instanceId) ? await db.instance.findUnique({ where: { id: instanceId }, select: { id: true } }) : null;
  if (!found) throw new NotFoundError(`no instance "${instanceId}"`);
}

/** Assigns an instance to an operator at an escalation tier; assigning again changes the tier. */
export async function assign({ db }: Rows, instanceId: string, operatorRef: string, tier = 1): Promise<Assignment> {
  const { tier: t } = parseInput(tierSchema, { tier });
  await requireInstance(db, instanceId);
  const operator = await getOperator({ db }, operatorRef);
  const key = { instanceId, operatorId: operator.id };
  const row = await db.assignment.upsert({
    where: { instanceId_operatorId: key },
    create: { ...key, tier: t },
    update: { tier: t },
  });
  return { instanceId: row.instanceId, operatorId: row.operatorId, tier: row.tier };
}

export async function unassign({ db }: Rows, instanceId: string, operatorRef: string): Promise<Assignment> {
  const operator = await getOperator({ db }, operatorRef);
  const key = { instanceId, operatorId: operator.id };
  const row = isUuid(instanceId) ? await db.assignment.findUnique({ where: { instanceId_operatorId: key } }) : null;
  if (!row) throw new NotFoundError(`instance "${instanceId}" is not assigned to operator "${operator.name}"`);
  await db.assignment.deleteMany({ where: key });
  return { instanceId: row.instanceId, operatorId: row.operatorId, tier: row.tier };
}

/** What `setChannelMode` takes: a mode, or `default` to follow the channel's place again. */
export const CHANNEL_MODES = ["immediate", "digest", "default"] as const;
const modeSchema = z.object({ mode: z.enum(CHANNEL_MODES, `must be one of ${CHANNEL_MODES.join(", ")}`) });

/**
 * Sets how a channel gets its events: each at once, or grouped into digests. Deliveries already
 * held for a digest still go out in it; the mode decides for the events after this.
 */
export async function setChannelMode({ db }: Rows, channelId: string, mode: string): Promise<ChannelView> {
  const v = parseInput(modeSchema, { mode });
  const found = isUuid(channelId) ? await db.channel.findUnique({ where: { id: channelId }, select: { id: true } }) : null;
  if (!found) throw new NotFoundError(`no channel "${channelId}"`);
  const c = await db.channel.update({
    where: { id: channelId },
    data: { mode: v.mode === "default" ? null : v.mode },
    include: { operator: { select: { assignments: { select: { instanceId: true }, take: 1 } } } },
  });
  return channelView(c, c.operator.assignments.length === 0);
}
