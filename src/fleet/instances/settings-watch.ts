import { setTimeout as sleep } from "node:timers/promises";
import type { Instance } from "../../db.js";
import { notRestoredSummary, settingsChangeSummary } from "../../notify/alert-content.js";
import { recordEvent } from "../../notify/outbox.js";
import { addNotifyJobs, addSettingsJob, settingsJobId, type SettingsJob } from "../../queues.js";
import type { FleetContext } from "../context.js";
import {
  fingerprintOf, hasOpenSession, observeSettings, pointAtFleet, readSettings, seenColumns, settingsChanges, storedSeen,
  storedWebhookToken, type SettingsSeen,
} from "./webhook-settings.js";

/**
 * Settings that change by themselves after a re-authorization (users report it of the provider):
 * QRFLEET_SETTINGS_CHECK_AFTER_MS after a session ends authorized, an instance whose settings were
 * read before is read again. A change is told once, as `instance.alert` (reason settings_changed):
 * the new reading replaces the recorded one in the statement that records the alert, so a second
 * check, daemon or retry finds nothing new. With restoreSettings, settings that were ours are set back.
 */

export type CheckResult = "superseded" | "not_watched" | "session_open" | "unchanged" | "changed" | "restored" | "not_restored" | "check_failed";

/**
 * Called when a session ends authorized (its attempt, or the provider's webhook): the check is
 * recorded as due in PostgreSQL, then queued. It never fails the re-link it follows: a failure is logged.
 */
export async function scheduleSettingsCheck(ctx: FleetContext, instanceId: string): Promise<void> {
  try {
    const dueAt = new Date(Date.now() + ctx.config.QRFLEET_SETTINGS_CHECK_AFTER_MS);
    const { count } = await ctx.db.instance.updateMany({ where: { id: instanceId, settingsFingerprint: { not: null } }, data: { settingsCheckDueAt: dueAt } });
    if (count === 1) await addSettingsJob(ctx.queues, { instanceId, dueAt: dueAt.getTime() });
  } catch (err) {
    ctx.log.warn({ err, instanceId }, "could not schedule the settings check after the re-link");
  }
}

export async function checkSettings(ctx: FleetContext, job: SettingsJob): Promise<CheckResult> {
  const inst = await ctx.db.instance.findUnique({ where: { id: job.instanceId } });
  // A later re-link moved the check on: that one's job reads the settings.
  if (!inst || inst.settingsCheckDueAt?.getTime() !== job.dueAt) return "superseded";
  const before = storedSeen(inst.settingsSeen);
  if (!inst.enabled || !before || inst.settingsFingerprint === null) return settle(ctx, inst, "not_watched");
  // setSettings or not, a session open now means the instance is being re-linked again: that re-link checks.
  if (await hasOpenSession(ctx, inst.id)) return settle(ctx, inst, "session_open");
  let seen: SettingsSeen;
  try {
    seen = await observeSettings(ctx, inst);
  } catch (err) {
    ctx.events.emit("instance:settings", { instanceId: inst.id, step: "check_failed", detail: (err as Error).message });
    return settle(ctx, inst, "check_failed");
  }
  if (fingerprintOf(seen) === inst.settingsFingerprint) return settle(ctx, inst, "unchanged", { settingsCheckedAt: new Date() });
  const restoring = !inst.restoreSettings ? "off" : before.setup === "ours" ? "restoring" : "not_ours";
  if (!(await alertOnce(ctx, inst, before, seen, restoring))) return "superseded";
  return restoring === "restoring" ? restore(ctx, inst) : "changed";
}

/** The check is over: nothing is due any more (unless a later re-link made another one due). */
async function settle(ctx: FleetContext, inst: Instance, result: CheckResult, data: { settingsCheckedAt?: Date } = {}): Promise<CheckResult> {
  await ctx.db.instance.updateMany({ where: { id: inst.id, settingsCheckDueAt: inst.settingsCheckDueAt }, data: { ...data, settingsCheckDueAt: null } });
  return result;
}

/** The new reading is recorded only if the recorded one is still the one compared: the alert commits with it, once. */
async function alertOnce(ctx: FleetContext, inst: Instance, before: SettingsSeen, seen: SettingsSeen, restoring: "restoring" | "off" | "not_ours"): Promise<boolean> {
  const changes = settingsChanges(before, seen);
  const deliveryIds = await ctx.db.$transaction(async (tx) => {
    const { count } = await tx.instance.updateMany({
      where: { id: inst.id, settingsFingerprint: inst.settingsFingerprint, settingsCheckDueAt: inst.settingsCheckDueAt },
      data: { ...seenColumns(seen), settingsCheckDueAt: null },
    });
    if (count !== 1) return null;
    const summary = settingsChangeSummary(before, seen, restoring);
    return alertEvent(ctx, tx, inst, { reason: "settings_changed", changes, before, after: seen, restore: restoring, summary });
  });
  if (deliveryIds === null) return false;
  await addNotifyJobs(ctx.queues, deliveryIds);
  ctx.events.emit("instance:settings", { instanceId: inst.id, step: "changed", detail: changes.join(",") });
  return true;
}

function alertEvent(ctx: FleetContext, tx: Parameters<typeof recordEvent>[0], inst: Instance, data: Record<string, unknown>): Promise<string[]> {
  return recordEvent(
    tx,
    { type: "instance.alert", instanceId: inst.id, sessionId: null, attempt: null, everyTier: true, data: { state: inst.lastState ?? "unknown", since: new Date(), ...data } },
    { escalateAfter: ctx.config.QRFLEET_ESCALATE_AFTER },
  );
}

/** Ours again, with the token the fleet holds, read back after the reboot; a failure is told once more. */
async function restore(ctx: FleetContext, inst: Instance): Promise<CheckResult> {
  const token = storedWebhookToken(ctx, inst);
  const why = token === null ? "its stored webhook token cannot be read (set one with qrfleet instance update --webhook-token)" : await setBack(ctx, inst, token);
  if (why === null) {
    ctx.events.emit("instance:settings", { instanceId: inst.id, step: "restored" });
    return "restored";
  }
  const deliveryIds = await ctx.db.$transaction((tx) => alertEvent(ctx, tx, inst, { reason: "settings_not_restored", summary: notRestoredSummary(why) }));
  await addNotifyJobs(ctx.queues, deliveryIds);
  ctx.events.emit("instance:settings", { instanceId: inst.id, step: "not_restored", detail: why });
  return "not_restored";
}

/** null when the settings read ours again; otherwise why not, in words. */
async function setBack(ctx: FleetContext, inst: Instance, token: string): Promise<string | null> {
  try {
    if (!(await pointAtFleet(ctx, inst, token))) return "GREEN-API answered that it did not save them";
    await sleep(ctx.config.QRFLEET_SETTINGS_VERIFY_AFTER_MS);
    const seen = await readSettings(ctx, inst);
    return seen.setup === "ours" ? null : `GREEN-API said it saved them, yet they still read ${seen.setup.replace("_", " ")}`;
  } catch (err) {
    return `the call failed (${(err as Error).message})`;
  }
}

/** The reconciler's part: a due check whose job Redis lost is queued again. */
export async function restoreSettingsChecks(ctx: FleetContext, isDead: (state: string) => boolean): Promise<number> {
  const due = await ctx.db.instance.findMany({ where: { settingsCheckDueAt: { not: null } }, select: { id: true, settingsCheckDueAt: true }, take: 10_000 });
  let restored = 0;
  for (const inst of due) {
    const job = { instanceId: inst.id, dueAt: inst.settingsCheckDueAt!.getTime() };
    if (!isDead(await ctx.queues.settings.getJobState(settingsJobId(job)))) continue;
    await ctx.queues.settings.remove(settingsJobId(job)).catch(() => 0);
    await addSettingsJob(ctx.queues, job);
    restored++;
  }
  return restored;
}
