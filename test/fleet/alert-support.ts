import { expect } from "vitest";
import type { FleetContext } from "../../src/fleet/context.js";
import { addOperator, assign } from "../../src/fleet/operators/operators.js";
import { sweepFleet } from "../../src/fleet/triggers/sweep.js";
import type { Script, Simulator, StateStep } from "../../src/simulator/index.js";
import { simulatedInstance, waitFor } from "../support/fleet.js";
import type { Receiver } from "../support/receiver.js";
import type { TestSmtp } from "../support/smtp.js";
import { verified, type Hook } from "../e2e/support.js";

/** What the alert suites share: an instance with its own operator, and what that operator got. */

export interface Watched {
  id: string;
  idInstance: string;
  email: string;
  secret: string;
}

/** An instance on the simulator playing `states`, with an operator (email and webhook) of its own. */
export async function watchedInstance(
  ctx: FleetContext,
  sim: Simulator,
  receiver: Receiver,
  states: StateStep[],
  script: Partial<Script> = {},
  extra: Record<string, unknown> = {},
): Promise<Watched> {
  const inst = await simulatedInstance(ctx, sim, script, { label: `Desk ${states[0]!.state}`, ...extra });
  const email = `ops-${inst.idInstance}@example.test`;
  const added = await addOperator(ctx, { name: `ops-${inst.idInstance}`, email, webhook: `${receiver.url}?instance=${inst.idInstance}` });
  await assign(ctx, inst.id, added.operator.id);
  // Played once the operator is assigned: the provider's webhook may report the first state at once.
  sim.playStates(inst.idInstance, states);
  return { id: inst.id, idInstance: inst.idInstance, email, secret: added.webhookSecret! };
}

/** The instance's instance.* events, oldest first, as types with their stored data. */
export async function instanceEvents(ctx: FleetContext, instanceId: string) {
  const rows = await ctx.db.event.findMany({
    where: { instanceId, type: { in: ["instance.alert", "instance.recovered"] } },
    orderBy: { createdAt: "asc" },
  });
  return rows.map((r) => ({ type: r.type, data: r.payload as Record<string, unknown> }));
}

export const countOf = (events: Array<{ type: string }>, type: string) => events.filter((e) => e.type === type).length;

/** Sweeps until `check` holds (each sweep is one more report of every instance's state). */
export async function sweepUntil<T>(ctx: FleetContext, what: string, check: () => Promise<T | undefined | null | false>): Promise<T> {
  return waitFor(what, async () => {
    await sweepFleet(ctx);
    return check();
  }, 15_000, 50);
}

/** Every webhook and email the instance's operator got of this event type, once all of them have arrived. */
export async function received(smtp: TestSmtp, receiver: Receiver, w: Watched, type: string, count: number) {
  const hooks = () => receiver.requests.filter((r) => r.path.endsWith(`?instance=${w.idInstance}`)).map((r): Hook => verified(r, w.secret));
  const mails = () => smtp.messages.filter((m) => m.to.includes(w.email) && m.parsed.headers.get("x-qrfleet-event") === type);
  await waitFor(`${count} ${type} webhook(s) and email(s)`, async () =>
    hooks().filter((h) => h.type === type).length >= count && mails().length >= count,
  );
  const got = { hooks: hooks().filter((h) => h.type === type), mails: mails() };
  expect({ hooks: got.hooks.length, mails: got.mails.length }).toEqual({ hooks: count, mails: count });
  return got;
}
