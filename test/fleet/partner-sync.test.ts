import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { FleetContext } from "../../src/fleet/context.js";
import { addInstance } from "../../src/fleet/instances/instances.js";
import { syncPartnerAccount, type SyncProgress } from "../../src/fleet/partner/partner-sync.js";
import { startSimulator, type Simulator } from "../../src/simulator/index.js";
import { newIdInstance, newPrefix, newToken, testFleet } from "../support/fleet.js";

let fleet: ReturnType<typeof testFleet>;
const simulators: Simulator[] = [];

beforeAll(() => {
  fleet = testFleet({ QRFLEET_REDIS_PREFIX: newPrefix() });
});
afterAll(async () => {
  await fleet?.close();
  await Promise.all(simulators.map((s) => s.close()));
});

/** A partner account of `n` instances on its own simulator, and the fleet configured to sync it. */
async function partnerAccount(n: number, opts: { listsApiUrl?: boolean } = {}) {
  const partnerToken = newToken();
  const sim = await startSimulator({ partnerToken, partnerListsApiUrl: opts.listsApiUrl ?? false });
  simulators.push(sim);
  const instances = Array.from({ length: n }, () => ({ idInstance: newIdInstance(), token: newToken() }));
  for (const i of instances) sim.define(i);
  const ctx = withPartner(sim, partnerToken);
  return { sim, ctx, instances, partnerToken };
}

function withPartner(sim: Simulator, partnerToken: string, instanceApiUrl = sim.url): FleetContext {
  return { ...fleet, config: { ...fleet.config, GREENAPI_PARTNER_TOKEN: partnerToken, GREENAPI_PARTNER_API_URL: sim.url, GREENAPI_INSTANCE_API_URL: instanceApiUrl } };
}

const rowsOf = (ids: string[]) => fleet.db.instance.findMany({ where: { idInstance: { in: ids } }, orderBy: { idInstance: "asc" } });

describe("instance sync from a partner account", () => {
  it("creates every instance of the account, then changes nothing on a second run", async () => {
    const { ctx, instances, sim } = await partnerAccount(25);
    const progress: SyncProgress[] = [];
    const first = await syncPartnerAccount(ctx, { onProgress: (p) => progress.push(p) });
    expect(first).toMatchObject({ listed: 25, created: 25, updated: 0, unchanged: 0, disabled: 0, errors: [] });
    expect(progress[0]).toEqual({ step: "listed", done: 25, total: 25 });
    expect(progress.at(-1)).toEqual({ step: "created", done: 25, total: 25 });

    const rows = await rowsOf(instances.map((i) => i.idInstance));
    expect(rows).toHaveLength(25);
    for (const row of rows) {
      expect(row).toMatchObject({ apiUrl: sim.url, label: `Instance ${row.idInstance}`, enabled: true });
      expect(fleet.box.open(row.tokenCiphertext)).toBe(instances.find((i) => i.idInstance === row.idInstance)!.token);
    }

    const second = await syncPartnerAccount(ctx);
    expect(second).toMatchObject({ listed: 25, created: 0, updated: 0, unchanged: 25, disabled: 0, errors: [], changes: [] });
    const after = await rowsOf(instances.map((i) => i.idInstance));
    expect(after.map((r) => r.updatedAt)).toEqual(rows.map((r) => r.updatedAt));
  });

  it("follows the account: a rename, a new token (clearing the attention flag), a deletion and an instance no longer listed", async () => {
    const { ctx, instances, sim } = await partnerAccount(5);
    await syncPartnerAccount(ctx);
    const [renamed, rekeyed, deleted, unlisted, kept] = instances as [typeof instances[number], typeof instances[number], typeof instances[number], typeof instances[number], typeof instances[number]];
    await fleet.db.instance.update({ where: { apiUrl_idInstance: { apiUrl: sim.url, idInstance: rekeyed.idInstance } }, data: { attention: "invalid_token" } });
    sim.partner.entry(renamed.idInstance, { name: "front desk" });
    const newToken_ = newToken();
    sim.define({ idInstance: rekeyed.idInstance, token: newToken_ });
    sim.partner.entry(deleted.idInstance, { deleted: true });
    sim.partner.entry(unlisted.idInstance, { listed: false });

    const report = await syncPartnerAccount(ctx);
    expect(report).toMatchObject({ listed: 4, created: 0, updated: 2, unchanged: 1, disabled: 2, errors: [] });
    expect(report.changes).toEqual(expect.arrayContaining([
      expect.objectContaining({ idInstance: renamed.idInstance, change: "updated", detail: ["label"] }),
      expect.objectContaining({ idInstance: rekeyed.idInstance, change: "updated", detail: ["token"] }),
      expect.objectContaining({ idInstance: deleted.idInstance, change: "disabled", detail: "deleted" }),
      expect.objectContaining({ idInstance: unlisted.idInstance, change: "disabled", detail: "unlisted" }),
    ]));
    const byId = new Map((await rowsOf(instances.map((i) => i.idInstance))).map((r) => [r.idInstance, r]));
    expect(byId.get(renamed.idInstance)).toMatchObject({ label: "front desk", enabled: true });
    expect(byId.get(rekeyed.idInstance)).toMatchObject({ attention: null, enabled: true });
    expect(fleet.box.open(byId.get(rekeyed.idInstance)!.tokenCiphertext)).toBe(newToken_);
    expect(byId.get(deleted.idInstance)).toMatchObject({ enabled: false });
    expect(byId.get(unlisted.idInstance)).toMatchObject({ enabled: false });
    expect(byId.get(kept.idInstance)).toMatchObject({ enabled: true });

    expect(await syncPartnerAccount(ctx)).toMatchObject({ created: 0, updated: 0, disabled: 0, unchanged: 4, errors: [] });
  });

  it("takes over an instance added by hand under its own apiUrl, keeps that apiUrl, and skips other messengers", async () => {
    const { ctx, instances, sim } = await partnerAccount(3);
    const [byHand, telegram] = instances as [typeof instances[number], typeof instances[number]];
    await addInstance(fleet, { apiUrl: "https://7103.api.greenapi.com", idInstance: byHand.idInstance, token: byHand.token, label: "mine" });
    sim.partner.entry(byHand.idInstance, { name: "mine" });
    sim.partner.entry(telegram.idInstance, { typeInstance: "telegram" });
    const report = await syncPartnerAccount(ctx);
    expect(report).toMatchObject({ created: 1, updated: 1, skipped: 1, errors: [] });
    expect(report.changes).toContainEqual(expect.objectContaining({ idInstance: byHand.idInstance, detail: ["partnerAccount"] }));
    const rows = await rowsOf([byHand.idInstance, telegram.idInstance]);
    expect(rows.map((r) => [r.idInstance, r.apiUrl])).toEqual([[byHand.idInstance, "https://7103.api.greenapi.com"]]);
  });

  it("makes a console name with bidi controls, zero-width characters or line separators into a label without them", async () => {
    const { ctx, instances, sim } = await partnerAccount(1);
    sim.partner.entry(instances[0]!.idInstance, { name: "Shop\u202Egnp.exe\u200B \u2066desk\u2069\u2028two" });
    await syncPartnerAccount(ctx);
    const stored = await fleet.db.instance.findUniqueOrThrow({ where: { apiUrl_idInstance: { apiUrl: sim.url, idInstance: instances[0]!.idInstance } } });
    expect(stored.label).toBe("Shop gnp.exe desk two");
  });

  it("uses the host the listing names, when it names one", async () => {
    const { ctx, instances, sim } = await partnerAccount(2, { listsApiUrl: true });
    await syncPartnerAccount({ ...ctx, config: { ...ctx.config, GREENAPI_INSTANCE_API_URL: "https://api.green-api.com" } });
    expect((await rowsOf(instances.map((i) => i.idInstance))).map((r) => r.apiUrl)).toEqual([sim.url, sim.url]);
  });

  it("counts without writing on a dry run", async () => {
    const { ctx, instances } = await partnerAccount(4);
    const report = await syncPartnerAccount(ctx, { dryRun: true });
    expect(report).toMatchObject({ dryRun: true, created: 4, errors: [] });
    expect(await rowsOf(instances.map((i) => i.idInstance))).toEqual([]);
  });

  it("refuses a partner token the API refuses under HTTP 200, with a clear message and nothing changed", async () => {
    const { sim, instances, partnerToken } = await partnerAccount(3);
    const wrong = newToken();
    const err = (await syncPartnerAccount(withPartner(sim, wrong)).then(() => null, (e: unknown) => e)) as Error & { code: string };
    expect(err).toMatchObject({ code: "invalid_token" });
    expect(err.message).toMatch(/answered HTTP 200 with code 401: "Unauthorized: invalid partner token": the partner token is not accepted \(check GREENAPI_PARTNER_TOKEN\)/);
    expect(err.message).not.toContain(wrong);
    expect(err.message).not.toContain(partnerToken);
    expect(err.message).toContain("/partner/getInstances/***");
    expect(await rowsOf(instances.map((i) => i.idInstance))).toEqual([]);
  });

  it("refuses garbage (not JSON, a wrong shape, a 200 saying busy) and changes nothing", async () => {
    const { sim, ctx, instances } = await partnerAccount(3);
    await syncPartnerAccount(ctx);
    sim.define({ idInstance: instances[0]!.idInstance, token: newToken() });
    const before = await rowsOf(instances.map((i) => i.idInstance));
    const cases = [
      ["not_json", "provider_protocol", /answered HTTP 200 with a body that is not JSON/],
      ["wrong_shape", "provider_protocol", /neither a list of instances nor an error/],
      ["busy", "provider_unavailable", /with code 429: "Too Many Requests": try again later/],
    ] as const;
    for (const [mode, code, message] of cases) {
      sim.partner.answer(mode);
      const err = await syncPartnerAccount(ctx).then(() => null, (e: unknown) => e);
      expect(err, mode).toMatchObject({ code, message: expect.stringMatching(message) });
    }
    expect(await rowsOf(instances.map((i) => i.idInstance))).toEqual(before);
  });

  it("names an entry it cannot read, and then disables nothing it does not see listed", async () => {
    const { sim, ctx, instances } = await partnerAccount(3);
    await syncPartnerAccount(ctx);
    sim.partner.entry(instances[0]!.idInstance, { listed: false });
    sim.partner.answer("entry_without_id");
    const report = await syncPartnerAccount(ctx);
    expect(report).toMatchObject({ listed: 3, unchanged: 2, disabled: 0 });
    expect(report.errors.map((e) => e.message)).toEqual([
      expect.stringMatching(/^entry 3 of the listing cannot be read: idInstance: .*apiTokenInstance: .*deleted: /),
      "left enabled 1 instance no longer listed: 1 entry of the listing had no readable idInstance",
    ]);
    expect((await rowsOf([instances[0]!.idInstance]))[0]).toMatchObject({ enabled: true });
  });
});
