import type { Instance, QrSession, SessionStatus } from "../../db.js";
import type { FleetContext } from "../context.js";

/** A session is open while queued or running; an instance has at most one open (a unique index). */
export const OPEN_STATUSES: readonly SessionStatus[] = ["queued", "running"];
export const SESSION_STATUSES: readonly SessionStatus[] = [
  "queued", "running", "authorized", "already_logged", "wrong_number", "timed_out", "failed", "cancelled",
];

export type SessionWithInstance = QrSession & { instance: Pick<Instance, "idInstance" | "label"> };
export const instanceSummary = { instance: { select: { idInstance: true, label: true } } } as const;

/** The instance's open session, if any: the one lookup of it, for its sessions, its live page and its settings. */
export async function findOpenSession(ctx: FleetContext, instanceId: string): Promise<SessionWithInstance | null> {
  return ctx.db.qrSession.findFirst({
    where: { instanceId, status: { in: [...OPEN_STATUSES] } },
    include: instanceSummary,
  });
}
