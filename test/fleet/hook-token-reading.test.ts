import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { addInstance } from "../../src/fleet/instances/instances.js";
import { WebhookTokens } from "../../src/fleet/triggers/hook-auth.js";
import { newIdInstance, newToken, testFleet } from "../support/fleet.js";

/**
 * The fleet's webhook tokens are read again every QRFLEET_PROVIDER_HOOK_CACHE_MS, a page at a
 * time, as the backstop for a change whose message never came: here every change is made in SQL
 * behind the cache's back, and the pages are two instances long so the reading spans many.
 */

let fleet: ReturnType<typeof testFleet>;
beforeAll(() => void (fleet = testFleet({})));
afterAll(async () => fleet?.close());

const accepted = (tokens: WebhookTokens, idInstance: string, token: string) =>
  tokens.authenticate(idInstance, `Bearer ${token}`).then(() => true, () => false);

describe("reading the fleet's webhook tokens again", () => {
  it("takes tokens changed, instances removed and idInstances moved behind its back, across pages", async () => {
    const made = await Promise.all(
      Array.from({ length: 5 }, async () => {
        const idInstance = newIdInstance();
        const hookToken = `hook-${newToken()}`;
        const inst = await addInstance(fleet, { apiUrl: "http://127.0.0.1:9", idInstance, token: newToken(), webhookToken: hookToken });
        return { id: inst.id, idInstance, hookToken };
      }),
    );
    const tokens = new WebhookTokens(fleet, 1, 2);
    for (const m of made) expect(await accepted(tokens, m.idInstance, m.hookToken)).toBe(true);

    const [changed, removed, moved, untouched] = made;
    const newHookToken = `hook-${newToken()}`;
    const movedTo = newIdInstance();
    await fleet.sql.query(`UPDATE "Instance" SET "webhookTokenCiphertext" = $2 WHERE id = $1`, [changed!.id, fleet.box.seal(newHookToken)]);
    await fleet.sql.query(`DELETE FROM "Instance" WHERE id = $1`, [removed!.id]);
    await fleet.sql.query(`UPDATE "Instance" SET "idInstance" = $2 WHERE id = $1`, [moved!.id, movedTo]);

    await new Promise((r) => setTimeout(r, 5));
    await accepted(tokens, untouched!.idInstance, untouched!.hookToken); // due: starts a reading behind this answer
    await tokens.close();

    expect(await accepted(tokens, changed!.idInstance, changed!.hookToken)).toBe(false);
    expect(await accepted(tokens, changed!.idInstance, newHookToken)).toBe(true);
    expect(await accepted(tokens, removed!.idInstance, removed!.hookToken)).toBe(false);
    expect(await accepted(tokens, moved!.idInstance, moved!.hookToken)).toBe(false);
    expect(await accepted(tokens, movedTo, moved!.hookToken)).toBe(true);
    expect(await accepted(tokens, untouched!.idInstance, untouched!.hookToken)).toBe(true);
    await tokens.close();
  });
});
