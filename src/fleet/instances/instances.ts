import type { Db, Instance, Prisma } from "../../db.js";
import { isUniqueViolation } from "../../db.js";
import { reauthSchedulerId } from "../../queues.js";
import type { FleetContext } from "../context.js";
import { announceInstanceChanges } from "./instance-changes.js";
import { ConflictError, NotFoundError, ValidationError } from "../errors.js";
import { instanceUpdateSchema, newInstanceSchema, type NewInstance } from "./instance-input.js";
import { sealedInstance } from "./instance-rows.js";
import { isUuid } from "../../lib/uuid.js";
import { parseInput } from "../validate.js";

/** What the CLI and the API show of an instance: never its token. */
export interface InstanceView {
  id: string;
  apiUrl: string;
  idInstance: string;
  label: string | null;
  expectedPhone: string | null;
  cron: string | null;
  enabled: boolean;
  lastState: string | null;
  lastStateAt: Date | null;
  unlinkedSince: Date | null;
  attention: string | null;
  maxAttempts: number | null;
  backoffBaseMs: number | null;
  backoffMaxMs: number | null;
  hasWebhookToken: boolean;
  /** How its QR sessions reach the provider: "websocket", or "rest" polling (the fallback). */
  qrTransport: "websocket" | "rest";
  /** What the provider's webhook settings said when last read (`instance webhooks`, a re-link check); null before. */
  webhookSetup: string | null;
  settingsCheckedAt: Date | null;
  /** Settings found changed after a re-link are set back, if they were ours. */
  restoreSettings: boolean;
  lastSession: { id: string; status: string; attempt: number; endedAt: Date | null } | null;
  createdAt: Date;
}

const withLastSession = {
  sessions: { orderBy: { createdAt: "desc" }, take: 1, select: { id: true, status: true, attempt: true, endedAt: true } },
} satisfies Prisma.InstanceInclude;

type InstanceWithLast = Instance & { sessions?: Array<{ id: string; status: string; attempt: number; endedAt: Date | null }> };

export function toView(i: InstanceWithLast): InstanceView {
  return {
    id: i.id,
    apiUrl: i.apiUrl,
    idInstance: i.idInstance,
    label: i.label,
    expectedPhone: i.expectedPhone,
    cron: i.cron,
    enabled: i.enabled,
    lastState: i.lastState,
    lastStateAt: i.lastStateAt,
    unlinkedSince: i.unlinkedSince,
    attention: i.attention,
    maxAttempts: i.maxAttempts,
    backoffBaseMs: i.backoffBaseMs,
    backoffMaxMs: i.backoffMaxMs,
    hasWebhookToken: i.webhookTokenCiphertext !== null,
    qrTransport: i.qrTransport,
    webhookSetup: i.webhookSetup,
    settingsCheckedAt: i.settingsCheckedAt,
    restoreSettings: i.restoreSettings,
    lastSession: i.sessions?.[0] ?? null,
    createdAt: i.createdAt,
  };
}

/** An instance is named by our id or by its idInstance (unique unless two apiUrls share it). */
export async function resolveInstance(db: Db, ref: string): Promise<Instance> {
  const key = ref.trim();
  if (isUuid(key)) {
    const found = await db.instance.findUnique({ where: { id: key } });
    if (found) return found;
  } else if (/^\d+$/.test(key)) {
    const found = await db.instance.findMany({ where: { idInstance: key }, take: 2 });
    if (found.length > 1) throw new ConflictError(`idInstance ${key} exists under several apiUrls: name it by id`);
    if (found[0]) return found[0];
  }
  throw new NotFoundError(`no instance ${JSON.stringify(key)}`);
}

export function parseNewInstance(input: unknown): NewInstance {
  return parseInput(newInstanceSchema, input);
}

export function instanceData(ctx: FleetContext, v: NewInstance): Prisma.InstanceCreateManyInput {
  return sealedInstance(v, ctx.box.seal(v.token), v.webhookToken ? ctx.box.seal(v.webhookToken) : null);
}

export async function addInstance(ctx: FleetContext, input: unknown): Promise<InstanceView> {
  const v = parseNewInstance(input);
  try {
    const created = await ctx.db.instance.create({ data: instanceData(ctx, v) });
    await announceInstanceChanges(ctx, [created.idInstance]);
    if (created.cron) await syncCronSchedule(ctx, created);
    return toView(created);
  } catch (err) {
    if (isUniqueViolation(err)) throw new ConflictError(`instance ${v.idInstance} at ${v.apiUrl} already exists`);
    throw err;
  }
}

export async function listInstances(
  ctx: FleetContext,
  filter: { state?: string; attention?: boolean; limit?: number; offset?: number } = {},
): Promise<InstanceView[]> {
  const rows = await ctx.db.instance.findMany({
    where: {
      ...(filter.state ? { lastState: filter.state } : {}),
      ...(filter.attention ? { attention: { not: null } } : {}),
    },
    include: withLastSession,
    orderBy: [{ createdAt: "asc" }, { id: "asc" }],
    take: Math.min(filter.limit ?? 1000, 10_000),
    skip: filter.offset ?? 0,
  });
  return rows.map(toView);
}

export async function showInstance(ctx: FleetContext, ref: string): Promise<InstanceView> {
  const inst = await resolveInstance(ctx.db, ref);
  const full = await ctx.db.instance.findUniqueOrThrow({ where: { id: inst.id }, include: withLastSession });
  return toView(full);
}

export async function updateInstance(ctx: FleetContext, ref: string, input: unknown): Promise<InstanceView> {
  const inst = await resolveInstance(ctx.db, ref);
  const u = parseInput(instanceUpdateSchema, input);
  // The stored token would go to the new host with the next call: whoever moves it must hold the token.
  if (u.apiUrl !== undefined && new URL(u.apiUrl).host !== new URL(inst.apiUrl).host && u.token === undefined) {
    throw new ValidationError("apiUrl: moving an instance to another host needs its token again in the same request (token, or --token)", {
      issues: [{ path: "token", message: "required when apiUrl names another host" }],
    });
  }
  const data: Prisma.InstanceUpdateInput = {
    ...(u.apiUrl !== undefined && { apiUrl: u.apiUrl }),
    ...(u.token !== undefined && { tokenCiphertext: ctx.box.seal(u.token), attention: null }),
    ...(u.label !== undefined && { label: u.label }),
    ...(u.phone !== undefined && { expectedPhone: u.phone }),
    ...(u.cron !== undefined && { cron: u.cron }),
    ...(u.enabled !== undefined && { enabled: u.enabled }),
    ...(u.maxAttempts !== undefined && { maxAttempts: u.maxAttempts }),
    ...(u.backoffBaseMs !== undefined && { backoffBaseMs: u.backoffBaseMs }),
    ...(u.backoffMaxMs !== undefined && { backoffMaxMs: u.backoffMaxMs }),
    ...(u.webhookToken !== undefined && {
      webhookTokenCiphertext: u.webhookToken === null ? null : ctx.box.seal(u.webhookToken),
    }),
    ...(u.qrTransport !== undefined && { qrTransport: u.qrTransport }),
    ...(u.restoreSettings !== undefined && { restoreSettings: u.restoreSettings }),
    ...(u.clearAttention && { attention: null }),
  };
  try {
    const updated = await ctx.db.instance.update({ where: { id: inst.id }, data, include: withLastSession });
    if (u.webhookToken !== undefined) await announceInstanceChanges(ctx, [updated.idInstance]);
    if (inst.cron || updated.cron) await syncCronSchedule(ctx, updated);
    return toView(updated);
  } catch (err) {
    if (isUniqueViolation(err)) throw new ConflictError("another instance already has that apiUrl and idInstance");
    throw err;
  }
}

export async function removeInstance(ctx: FleetContext, ref: string): Promise<InstanceView> {
  const inst = await resolveInstance(ctx.db, ref);
  await ctx.db.instance.delete({ where: { id: inst.id } });
  await announceInstanceChanges(ctx, [inst.idInstance]);
  if (inst.cron) await ctx.queues.sweep.removeJobScheduler(reauthSchedulerId(inst.id));
  return toView(inst);
}

/** An instance with a cron gets its own BullMQ job scheduler (idempotent by id). */
export async function syncCronSchedule(ctx: FleetContext, inst: Pick<Instance, "id" | "cron" | "enabled">): Promise<void> {
  const id = reauthSchedulerId(inst.id);
  if (inst.cron && inst.enabled) {
    await ctx.queues.sweep.upsertJobScheduler(
      id,
      { pattern: inst.cron, tz: "UTC" },
      { name: "reauth", data: { kind: "reauth", instanceId: inst.id } },
    );
  } else {
    await ctx.queues.sweep.removeJobScheduler(id);
  }
}
