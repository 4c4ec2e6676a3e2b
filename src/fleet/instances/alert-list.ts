import { z } from "zod";
import type { Prisma } from "../../db.js";
import { POLICY_STATES } from "../../state-policies.js";
import type { FleetContext } from "../context.js";
import { resolveInstance, showInstance, type InstanceView } from "./instances.js";
import { parseInput } from "../validate.js";

/**
 * What the CLI and the API show of alerts: the episodes (fleet/instances/alerts.ts) whose operators were
 * told. An open alert is one whose state still holds; it closes with the "recovered" event.
 */

export interface AlertView {
  id: string;
  instanceId: string;
  idInstance: string;
  label: string | null;
  /** The provider state the alert is about. */
  state: string;
  /** When the state was first and last reported. */
  since: Date;
  seenAt: Date;
  alertedAt: Date;
  /** The one reboot of a `reboot` policy, if it came to that. */
  rebootedAt: Date | null;
  /** `warn_unlink`: when WhatsApp is expected to unlink the instance. */
  deadline: Date | null;
  /** When another state was reported (null while open), and which. */
  endedAt: Date | null;
  endState: string | null;
}

const filterSchema = z
  .object({
    instance: z.string().trim().min(1).max(200).optional(),
    state: z.enum(POLICY_STATES, `state must be one of ${POLICY_STATES.join(", ")}`).optional(),
    /** Ended alerts too, newest first. */
    all: z.boolean().optional(),
    limit: z.number().int().min(1).max(10_000).optional(),
  })
  .strict();
/** Validated here: the API and the CLI hand it on as they got it. */
export interface AlertFilter {
  instance?: string;
  state?: string;
  all?: boolean;
  limit?: number;
}

const withInstance = { instance: { select: { idInstance: true, label: true } } } satisfies Prisma.StateEpisodeInclude;
type Row = Prisma.StateEpisodeGetPayload<{ include: typeof withInstance }>;

export async function listAlerts(ctx: FleetContext, input: AlertFilter = {}): Promise<AlertView[]> {
  const filter = parseInput(filterSchema, input);
  const instanceId = filter.instance ? (await resolveInstance(ctx.db, filter.instance)).id : undefined;
  const rows = await ctx.db.stateEpisode.findMany({
    where: {
      alertedAt: { not: null },
      ...(filter.all ? {} : { endedAt: null }),
      ...(instanceId && { instanceId }),
      ...(filter.state && { state: filter.state }),
    },
    include: withInstance,
    orderBy: [{ alertedAt: "desc" }, { id: "asc" }],
    take: filter.limit ?? 1000,
  });
  return rows.map(toAlertView);
}

/** One instance as `instance show` and `GET /api/instances/:ref` give it: with its open alerts. */
export async function showInstanceWithAlerts(ctx: FleetContext, ref: string): Promise<InstanceView & { alerts: AlertView[] }> {
  const view = await showInstance(ctx, ref);
  return { ...view, alerts: await openAlertsOf(ctx, view.id) };
}

/** The instance's open alerts (at most one: an instance is in one state at a time). */
export async function openAlertsOf(ctx: FleetContext, instanceId: string): Promise<AlertView[]> {
  const rows = await ctx.db.stateEpisode.findMany({
    where: { instanceId, alertedAt: { not: null }, endedAt: null },
    include: withInstance,
    orderBy: { alertedAt: "desc" },
  });
  return rows.map(toAlertView);
}

function toAlertView(e: Row): AlertView {
  return {
    id: e.id,
    instanceId: e.instanceId,
    idInstance: e.instance.idInstance,
    label: e.instance.label,
    state: e.state,
    since: e.since,
    seenAt: e.seenAt,
    alertedAt: e.alertedAt!,
    rebootedAt: e.rebootedAt,
    deadline: e.deadline,
    endedAt: e.endedAt,
    endState: e.endState,
  };
}
