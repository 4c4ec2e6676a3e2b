import type { Job } from "bullmq";
import type { Instance } from "../src/db.js";
import type { FleetContext } from "../src/fleet/context.js";
import { instanceToken } from "../src/fleet/instances.js";
import { enqueueSession } from "../src/fleet/sessions.js";
import { GreenApiError } from "../src/greenapi/errors.js";
import { createGreenApiClient } from "../src/greenapi/rest.js";
import type { InstanceState } from "../src/greenapi/types.js";
import type { SessionTrigger } from "../src/db.js";
import type { SweepJob } from "../src/queues.js";

const PAGE = 500;

export interface SweepResult {
  checked: number;
  notAuthorized: number;
  enqueued: number;
  errors: number;
}

/** The sweep queue's processor: the fleet sweep, per-instance cron re-auth, QR image retention. */
export function createSweepProcessor(ctx: FleetContext) {
  return async (job: Job<SweepJob>, _token?: string, signal?: AbortSignal): Promise<unknown> => {
    const data = job.data;
    if (data.kind === "sweep") return sweepFleet(ctx, signal);
    if (data.kind === "reauth") {
      const inst = await ctx.db.instance.findUnique({ where: { id: data.instanceId } });
      return inst && inst.enabled ? checkInstance(ctx, inst, "schedule", signal) : "gone";
    }
    return deleteOldQrImages(ctx);
  };
}

/** Polls every enabled instance's state with bounded concurrency and starts sessions where needed. */
export async function sweepFleet(ctx: FleetContext, signal?: AbortSignal): Promise<SweepResult> {
  const result: SweepResult = { checked: 0, notAuthorized: 0, enqueued: 0, errors: 0 };
  let cursor: string | undefined;
  for (;;) {
    if (signal?.aborted) break;
    const page = await ctx.db.instance.findMany({
      where: { enabled: true, attention: null },
      orderBy: { id: "asc" },
      take: PAGE,
      ...(cursor && { cursor: { id: cursor }, skip: 1 }),
    });
    if (page.length === 0) break;
    cursor = page[page.length - 1]!.id;
    await forEachLimited(page, ctx.config.QRFLEET_SWEEP_CONCURRENCY, async (inst) => {
      const r = await checkInstance(ctx, inst, "sweep", signal);
      result.checked++;
      if (r === "error") result.errors++;
      if (r === "notAuthorized" || r === "enqueued") result.notAuthorized++;
      if (r === "enqueued") result.enqueued++;
    });
  }
  ctx.log.info({ sweep: result }, "fleet sweep done");
  return result;
}

type CheckResult = InstanceState | "enqueued" | "error";

/** One instance: record its state; a notAuthorized instance gets a session (or keeps its open one). */
export async function checkInstance(
  ctx: FleetContext,
  inst: Instance,
  trigger: SessionTrigger,
  signal?: AbortSignal,
): Promise<CheckResult> {
  const client = createGreenApiClient(
    { apiUrl: inst.apiUrl, idInstance: inst.idInstance, token: instanceToken(ctx, inst) },
    { timeoutMs: ctx.config.QRFLEET_HTTP_TIMEOUT_MS },
  );
  let state: InstanceState;
  try {
    ({ state } = await client.getStateInstance(signal));
  } catch (err) {
    const code = err instanceof GreenApiError ? err.code : "error";
    if (err instanceof GreenApiError && !err.transient) {
      await ctx.db.instance.update({ where: { id: inst.id }, data: { attention: code } });
    }
    ctx.log.warn({ instanceId: inst.id, code, err: (err as Error).message }, "state check failed");
    return "error";
  }
  const now = new Date();
  await ctx.db.instance.update({
    where: { id: inst.id },
    data: {
      lastState: state,
      lastStateAt: now,
      unlinkedSince: state === "notAuthorized" ? (inst.unlinkedSince ?? now) : state === "authorized" ? null : inst.unlinkedSince,
    },
  });
  if (state !== inst.lastState) ctx.events.emit("instance:state", { instanceId: inst.id, state });
  if (state !== "notAuthorized") return state;
  const { created } = await enqueueSession(ctx, inst, trigger);
  return created ? "enqueued" : state;
}

async function forEachLimited<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < items.length) {
      const item = items[next++]!;
      await fn(item).catch(() => undefined);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
}

/** QR images past retention are deleted in batches; sessions and outcomes stay. */
export async function deleteOldQrImages(ctx: FleetContext): Promise<{ deleted: number }> {
  const cutoff = new Date(Date.now() - ctx.config.QRFLEET_QR_RETENTION_DAYS * 86_400_000);
  let deleted = 0;
  for (;;) {
    const n = await ctx.db.$executeRaw`
      DELETE FROM "QrCode" WHERE id IN (SELECT id FROM "QrCode" WHERE "receivedAt" < ${cutoff} LIMIT 5000)`;
    deleted += n;
    if (n < 5000) break;
  }
  return { deleted };
}
