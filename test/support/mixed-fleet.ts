import { randomInt } from "node:crypto";
import type { FleetContext } from "../../src/fleet/context.js";
import { newToken } from "./fleet.js";

/** The states a mixed fleet cycles through; null is an instance never polled. */
const STATES = ["notAuthorized", "authorized", "authorized", "blocked", "sleepMode", null, "yellowCard"] as const;

export interface MixedFleet {
  /** Instance ids in insertion order, with the state each got. */
  instances: Array<{ id: string; idInstance: string; label: string; state: string | null }>;
}

/**
 * `count` instances written straight into the database in one statement, as a fleet that has run
 * for a while looks: logged-out ones with how long they have been, linked, blocked, asleep, never
 * checked; every blocked one with an open alert, every tenth flagged for attention.
 */
export async function insertMixedFleet(ctx: FleetContext, count: number, labelPrefix = "Shop"): Promise<MixedFleet> {
  const base = randomInt(1_000_000_000, 8_000_000_000);
  const rows = Array.from({ length: count }, (_, i) => ({
    idInstance: String(base + i),
    label: `${labelPrefix} ${String(i).padStart(4, "0")}`,
    state: STATES[i % STATES.length]!,
    attention: i % 10 === 9 ? "invalid_token" : null,
    unlinkedMinutes: STATES[i % STATES.length] === "notAuthorized" ? 10 + i : null,
  }));
  const sealed = Buffer.from(ctx.box.seal(newToken()));
  const { rows: inserted } = await ctx.sql.query<{ id: string; idInstance: string }>(
    `INSERT INTO "Instance" (id, "apiUrl", "idInstance", "tokenCiphertext", label, "lastState", "lastStateAt", "unlinkedSince", attention, "updatedAt")
     SELECT gen_random_uuid(), 'https://7103.api.greenapi.com', t.id_instance, $1, t.label, t.state,
       CASE WHEN t.state IS NULL THEN NULL ELSE now() END, now() - make_interval(mins => t.unlinked), t.attention, now()
     FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::int[]) AS t(id_instance, label, state, attention, unlinked)
     RETURNING id, "idInstance"`,
    [sealed, rows.map((r) => r.idInstance), rows.map((r) => r.label), rows.map((r) => r.state), rows.map((r) => r.attention), rows.map((r) => r.unlinkedMinutes)],
  );
  const idOf = new Map(inserted.map((r) => [r.idInstance, r.id]));
  const instances = rows.map((r) => ({ id: idOf.get(r.idInstance)!, idInstance: r.idInstance, label: r.label, state: r.state }));
  const blocked = instances.filter((i) => i.state === "blocked").map((i) => i.id);
  await ctx.sql.query(
    `INSERT INTO "StateEpisode" (id, "instanceId", state, since, "seenAt", "alertedAt")
     SELECT gen_random_uuid(), x, 'blocked', now() - interval '1 hour', now(), now() - interval '50 minutes' FROM unnest($1::uuid[]) AS x`,
    [blocked],
  );
  return { instances };
}

/** Marks a session of the instance as running, as a worker does when it opens the QR socket. */
export async function runningSession(ctx: FleetContext, instanceId: string): Promise<string> {
  const { rows } = await ctx.sql.query<{ id: string }>(
    `INSERT INTO "QrSession" (id, "instanceId", trigger, status, attempt, "maxAttempts", "backoffBaseMs", "backoffMaxMs", "startedAt", "updatedAt")
     VALUES (gen_random_uuid(), $1, 'sweep', 'running', 1, 3, 1000, 10000, now(), now()) RETURNING id`,
    [instanceId],
  );
  return rows[0]!.id;
}
