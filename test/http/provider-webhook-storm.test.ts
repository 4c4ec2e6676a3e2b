import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { recordInstanceStates } from "../../src/fleet/instances/instance-state.js";
import { newIdInstance, waitFor } from "../support/fleet.js";
import { ADMIN_TOKEN } from "./harness.js";
import { nowS, startHookedHttp, stateChanged, type HookedInstance } from "./provider-hooks.js";

/** The provider's webhook under a storm: many at once, repeated, out of order, and forged ones among them. */

let h: Awaited<ReturnType<typeof startHookedHttp>>;
beforeAll(async () => void (h = await startHookedHttp()));
afterAll(async () => h.close());

const instances = (n: number) => Promise.all(Array.from({ length: n }, () => h.provider.addInstance()));
const send = (inst: HookedInstance, state: string, timestamp = nowS()) => h.provider.hook(stateChanged(inst.idInstance, state, timestamp), `Bearer ${inst.hookToken}`);
const rowsOf = (list: HookedInstance[]) => h.ctx.db.instance.findMany({ where: { id: { in: list.map((i) => i.id) } }, orderBy: { id: "asc" } });
const byId = (list: HookedInstance[]) => [...list].sort((a, b) => (a.id < b.id ? -1 : 1));

/** Fisher–Yates over a copy: the order the provider's retries and our batches happen to meet them. */
function shuffled<T>(items: T[]): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

describe("a storm of provider webhooks", () => {
  it("answers a burst for many instances with 200 only once every state is recorded", async () => {
    const fleet = await instances(40);
    const t = nowS();
    const answers = await Promise.all(fleet.flatMap((inst) => [send(inst, "sleepMode", t), send(inst, "sleepMode", t), send(inst, "sleepMode", t)]));
    expect(answers.map((a) => a.statusCode)).toEqual(answers.map(() => 200));
    const rows = await rowsOf(fleet);
    expect(rows.map((r) => [r.lastState, r.lastStateAt?.getTime()])).toEqual(rows.map(() => ["sleepMode", t * 1000]));
  });

  it("keeps the newest state whatever order duplicates and late deliveries arrive in", async () => {
    const fleet = await instances(12);
    const t = nowS();
    const calls = fleet.flatMap((inst) => [
      () => send(inst, "sleepMode", t - 20),
      () => send(inst, "authorized", t),
      () => send(inst, "authorized", t),
      () => send(inst, "notAuthorized", t - 1),
      () => send(inst, "notAuthorized", t - 5),
    ]);
    const answers = await Promise.all(shuffled(calls).map((call) => call()));
    expect(answers.map((a) => a.statusCode)).toEqual(answers.map(() => 200));
    expect((await rowsOf(fleet)).map((r) => [r.lastState, r.lastStateAt?.getTime()])).toEqual(fleet.map(() => ["authorized", t * 1000]));

    // Delivered on their own, afterwards: a second older is older (timestamps have whole seconds), the same second is not.
    const [first] = fleet;
    const sessions = await h.ctx.db.qrSession.count({ where: { instanceId: first!.id } });
    expect((await send(first!, "notAuthorized", t - 1)).json().instances).toEqual([{ instanceId: first!.id, action: "stale" }]);
    expect((await rowsOf([first!]))[0]!.lastState).toBe("authorized");
    expect(await h.ctx.db.qrSession.count({ where: { instanceId: first!.id } })).toBe(sessions);
    expect((await send(first!, "sleepMode", t)).json().instances).toEqual([{ instanceId: first!.id, action: "recorded" }]);
  });

  it("starts exactly one session per instance for a burst of notAuthorized", async () => {
    const fleet = await instances(15);
    const t = nowS();
    const answers = await Promise.all(shuffled(fleet.flatMap((inst) => Array.from({ length: 6 }, () => inst))).map((inst) => send(inst, "notAuthorized", t)));
    expect(answers.map((a) => a.statusCode)).toEqual(answers.map(() => 200));
    const outcomes = answers.map((a) => a.json().instances[0] as { instanceId: string; action: string; sessionId?: string });
    for (const inst of fleet) {
      const sessions = await h.ctx.db.qrSession.findMany({ where: { instanceId: inst.id } });
      expect(sessions).toHaveLength(1);
      const mine = outcomes.filter((o) => o.instanceId === inst.id);
      expect(mine.map((o) => o.action).sort()).toEqual(["already_open", "already_open", "already_open", "already_open", "already_open", "enqueued"]);
      for (const o of mine) if (o.sessionId !== undefined) expect(o.sessionId).toBe(sessions[0]!.id);
    }
  });

  it("refuses a wrong or missing token with the same 401 in the middle of a storm, cached or not", async () => {
    const fleet = await instances(8);
    const unknown = { id: "", idInstance: newIdInstance(), hookToken: "anything-at-all" };
    const forged = [
      ...fleet.map((inst) => ({ ...inst, hookToken: "not-the-token" })),
      unknown,
    ];
    const refusals = new Set<string>();
    for (let round = 0; round < 2; round++) {
      const answers = await Promise.all([
        ...fleet.map((inst) => send(inst, "authorized")),
        ...forged.map((inst) => send(inst, "notAuthorized")),
        ...fleet.map((inst) => h.provider.hook(stateChanged(inst.idInstance, "notAuthorized"))),
      ]);
      expect(answers.slice(0, fleet.length).map((a) => a.statusCode)).toEqual(fleet.map(() => 200));
      for (const a of answers.slice(fleet.length)) {
        expect(a.statusCode).toBe(401);
        refusals.add(a.body);
      }
    }
    expect(refusals.size).toBe(1);
    expect(await h.ctx.db.qrSession.count({ where: { instanceId: { in: fleet.map((i) => i.id) } } })).toBe(0);
    expect((await rowsOf(fleet)).map((r) => r.lastState)).toEqual(fleet.map(() => "authorized"));
  });

  it("takes a webhook token changed through the API at once, and refuses the old one", async () => {
    const [inst] = await instances(1);
    expect((await send(inst!, "authorized")).statusCode).toBe(200);
    const renewed = { ...inst!, hookToken: `hook-renewed-${inst!.id}` };
    h.provider.secrets.push(renewed.hookToken);
    expect((await h.http.api("PATCH", `/api/instances/${inst!.id}`, { webhookToken: renewed.hookToken })).statusCode).toBe(200);
    expect((await send(inst!, "authorized")).statusCode).toBe(401);
    expect((await send(renewed, "authorized")).statusCode).toBe(200);
  });

  it("keeps the webhook's last word beside the state: hookState and hookSeenAt, which a poll leaves alone", async () => {
    const fleet = byId(await instances(3));
    const before = Date.now();
    const t = nowS();
    await Promise.all(fleet.map((inst) => send(inst, "authorized", t)));
    const hooked = await rowsOf(fleet);
    for (const row of hooked) {
      expect(row).toMatchObject({ lastState: "authorized", hookState: "authorized" });
      expect(row.hookSeenAt!.getTime()).toBeGreaterThanOrEqual(before - 1000);
    }
    // A late webhook changes neither; a poll of the sweep records the state but not as the webhook's word.
    await send(fleet[0]!, "notAuthorized", t - 30);
    await recordInstanceStates(h.ctx, [{ instance: { id: fleet[1]!.id }, state: "notAuthorized", at: new Date() }]);
    const after = await rowsOf(fleet);
    expect(after.map((r) => [r.lastState, r.hookState])).toEqual([["authorized", "authorized"], ["notAuthorized", "authorized"], ["authorized", "authorized"]]);
    expect(after[0]!.hookSeenAt).toEqual(hooked[0]!.hookSeenAt);
  });
});

describe("a webhook token changed elsewhere (the CLI, another daemon)", () => {
  it("is taken once QRFLEET_PROVIDER_HOOK_CACHE_MS has passed", async () => {
    const other = await startHookedHttp({ QRFLEET_PROVIDER_HOOK_CACHE_MS: "300" });
    try {
      const elsewhere = other.provider;
      const inst = await elsewhere.addInstance();
      expect((await elsewhere.hook(stateChanged(inst.idInstance, "authorized"), `Bearer ${inst.hookToken}`)).statusCode).toBe(200);
      const renewed = `hook-renewed-${inst.id}`;
      await other.ctx.db.instance.update({ where: { id: inst.id }, data: { webhookTokenCiphertext: other.ctx.box.seal(renewed) } });
      await waitFor("the new token to be accepted", async () => (await elsewhere.hook(stateChanged(inst.idInstance, "authorized"), `Bearer ${renewed}`)).statusCode === 200, 5_000, 50);
      expect((await elsewhere.hook(stateChanged(inst.idInstance, "authorized"), `Bearer ${inst.hookToken}`)).statusCode).toBe(401);
    } finally {
      await other.close();
    }
  });
});

// Runs last (vitest keeps file order): every body any test above received.
it("never returned a token in a response body", () => {
  expect(h.http.bodies.length).toBeGreaterThan(100);
  for (const body of h.http.bodies) for (const secret of [ADMIN_TOKEN, ...h.provider.secrets]) expect(body).not.toContain(secret);
});
