import { afterAll, afterEach, describe, expect, it } from "vitest";
import { Webhook } from "standardwebhooks";
import {
  addChannel,
  addOperator,
  assign,
  getOperator,
  listOperators,
  removeOperator,
  unassign,
} from "../../src/fleet/operators/operators.js";
import { ConflictError, FleetError, NotFoundError, ValidationError } from "../../src/fleet/errors.js";
import { testDb } from "../support/db.js";
import { box, cleanupOperators, makeInstance, uid } from "./fixtures.js";

const db = testDb();
const created: string[] = [];
afterEach(() => cleanupOperators(db, created));
afterAll(() => db.$disconnect());

async function add(input: Parameters<typeof addOperator>[1]) {
  const added = await addOperator({ db, box }, input);
  created.push(added.operator.id);
  return added;
}

describe("operators", () => {
  it("generates a whsec_ secret, returns it once and stores it only sealed", async () => {
    const name = uid("alice");
    const added = await add({ name, email: "alice@example.com", webhook: "https://hooks.example.com/qr" });
    const secret = added.webhookSecret!;
    expect(secret).toMatch(/^whsec_[A-Za-z0-9+/]+=*$/);
    expect(Buffer.from(secret.slice(6), "base64").length).toBeGreaterThanOrEqual(24);
    expect(() => new Webhook(secret)).not.toThrow();
    expect(added.operator.channels.map((c) => c.kind).sort()).toEqual(["email", "webhook"]);

    const row = await db.channel.findFirstOrThrow({ where: { operatorId: added.operator.id, kind: "webhook" } });
    const sealed = Buffer.from(row.secretCiphertext!);
    expect(sealed.includes(Buffer.from(secret))).toBe(false);
    expect(sealed.includes(Buffer.from(secret.slice(6)))).toBe(false);
    expect(box.open(sealed)).toBe(secret);

    const shown = JSON.stringify([await getOperator({ db }, name), await listOperators({ db })]);
    expect(shown).not.toContain(secret.slice(6));
  });

  it("keeps a valid given secret without repeating it, and refuses a bad one", async () => {
    const secret = `whsec_${Buffer.alloc(32, 7).toString("base64")}`;
    const added = await add({ name: uid("bob"), webhook: "http://127.0.0.1:1/x", webhookSecret: secret });
    expect(added.webhookSecret).toBeNull();
    const row = await db.channel.findFirstOrThrow({ where: { operatorId: added.operator.id, kind: "webhook" } });
    expect(box.open(row.secretCiphertext!)).toBe(secret);
    const bad = addOperator({ db, box }, { name: uid("bob"), webhook: "http://127.0.0.1:1/x", webhookSecret: "whsec_c2hvcnQ=" });
    await expect(bad).rejects.toMatchObject({ code: "invalid_input", httpStatus: 400 });
    await expect(bad).rejects.not.toThrow(/c2hvcnQ/);
  });

  it("rejects a duplicate name with conflict", async () => {
    const name = uid("dup");
    await add({ name, email: "a@example.com" });
    const err = await addOperator({ db, box }, { name, email: "b@example.com" }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConflictError);
    expect(err).toBeInstanceOf(FleetError);
    expect(err).toMatchObject({ code: "conflict", httpStatus: 409 });
  });

  it("rejects bad input with invalid_input and says which field", async () => {
    const cases: Array<[Parameters<typeof addOperator>[1], RegExp]> = [
      [{ name: uid("x"), email: "not-an-email" }, /email/],
      [{ name: uid("x"), webhook: "ftp://example.com/hook" }, /webhook/],
      [{ name: uid("x"), webhook: "javascript:alert(1)" }, /webhook/],
      [{ name: "   ", email: "ok@example.com" }, /name/],
      [{ name: uid("x") }, /email, a webhook or both/],
      [{ name: uid("x"), email: "a@example.com", webhookSecret: `whsec_${Buffer.alloc(32).toString("base64")}` }, /webhookSecret/],
    ];
    for (const [input, message] of cases) {
      const err = await addOperator({ db, box }, input).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ValidationError);
      expect((err as ValidationError).code).toBe("invalid_input");
      expect((err as Error).message).toMatch(message);
    }
  });

  it("finds by id or name, adds channels, and removes", async () => {
    const name = uid("carol");
    const { operator } = await add({ name, email: "carol@example.com" });
    expect((await getOperator({ db }, operator.id)).name).toBe(name);
    expect((await getOperator({ db }, name)).id).toBe(operator.id);
    const more = await addChannel({ db, box }, name, { kind: "webhook", address: "https://example.com/h" });
    expect(more.webhookSecret).toMatch(/^whsec_/);
    await expect(addChannel({ db, box }, name, { kind: "email", address: "carol@example.com" })).rejects.toMatchObject({ code: "conflict" });
    expect((await getOperator({ db }, name)).channels).toHaveLength(2);
    await removeOperator({ db }, name);
    await expect(getOperator({ db }, name)).rejects.toBeInstanceOf(NotFoundError);
    await expect(removeOperator({ db }, name)).rejects.toMatchObject({ code: "not_found", httpStatus: 404 });
  });

  it("assigns with a tier, re-assigning changes the tier, and unassigns", async () => {
    const { instance } = await makeInstance(db);
    const { operator } = await add({ name: uid("dave"), email: "dave@example.com" });
    expect(await assign({ db }, instance.id, operator.name)).toMatchObject({ tier: 1 });
    expect(await assign({ db }, instance.id, operator.id, 2)).toMatchObject({ tier: 2 });
    expect((await getOperator({ db }, operator.id)).assignments).toEqual([{ instanceId: instance.id, tier: 2 }]);
    await expect(assign({ db }, instance.id, operator.id, 0)).rejects.toMatchObject({ code: "invalid_input" });
    await expect(assign({ db }, instance.id, operator.id, 1.5)).rejects.toMatchObject({ code: "invalid_input" });
    await expect(assign({ db }, "00000000-0000-4000-8000-000000000000", operator.id)).rejects.toMatchObject({ code: "not_found" });
    await expect(assign({ db }, "not-an-id", operator.id)).rejects.toMatchObject({ code: "not_found" });
    await expect(assign({ db }, instance.id, uid("nobody"))).rejects.toMatchObject({ code: "not_found" });
    await unassign({ db }, instance.id, operator.name);
    await expect(unassign({ db }, instance.id, operator.name)).rejects.toMatchObject({ code: "not_found" });
    await db.instance.delete({ where: { id: instance.id } });
  });
});
