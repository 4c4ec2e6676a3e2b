import { createCipheriv, randomBytes } from "node:crypto";
import pg from "pg";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { addInstance } from "../../src/fleet/instances/instances.js";
import { rotateKey, SEALED_COLUMNS, type KindReport, type RotationReport } from "../../src/fleet/upkeep/key-rotation.js";
import { openLiveLink } from "../../src/fleet/triggers/live.js";
import { addOperator } from "../../src/fleet/operators/operators.js";
import { signLiveToken } from "../../src/notify/live-link.js";
import { SecretBox } from "../../src/secrets.js";
import { newIdInstance, newToken, testFleet, waitFor } from "../support/fleet.js";

/** The keys of one rotation: the fleet had OLD; NEW becomes current with OLD listed as previous. */
const OLD = randomBytes(32).toString("base64");
const NEW = randomBytes(32).toString("base64");
const API = "https://7103.api.greenapi.com";

let before: ReturnType<typeof testFleet>;
let ring: ReturnType<typeof testFleet>;
let newOnly: SecretBox;

beforeAll(() => {
  before = testFleet({ QRFLEET_SECRET_KEY: OLD });
  ring = testFleet({ QRFLEET_SECRET_KEY: NEW, QRFLEET_SECRET_KEYS_PREVIOUS: OLD });
  newOnly = new SecretBox(NEW);
});
afterAll(async () => {
  await before?.close();
  await ring?.close();
});
beforeEach(async () => {
  await ring.sql.query(`TRUNCATE "Instance", "Operator" CASCADE`);
});

interface Seeded {
  instances: Array<{ id: string; token: string; webhookToken: string }>;
  channels: Array<{ id: string; secret: string }>;
}

/** Instances (token and webhook token) and webhook channels, sealed by the fleet as it was before the rotation. */
async function seedUnderOldKey(count: number): Promise<Seeded> {
  const seeded: Seeded = { instances: [], channels: [] };
  for (let i = 0; i < count; i++) {
    const token = newToken();
    const webhookToken = `wh-${newToken()}`;
    const inst = await addInstance(before, { apiUrl: API, idInstance: newIdInstance(), token, webhookToken });
    seeded.instances.push({ id: inst.id, token, webhookToken });
    const added = await addOperator(before, { name: `ops-${inst.id}`, webhook: "https://hooks.example.test/qr" });
    const channel = await before.db.channel.findFirstOrThrow({ where: { operatorId: added.operator.id } });
    seeded.channels.push({ id: channel.id, secret: added.webhookSecret! });
  }
  return seeded;
}

/** What each row holds now, opened with the new key alone: proof that nothing needs the old one. */
async function openedWithNewKeyOnly(seeded: Seeded) {
  const instances = await ring.db.instance.findMany({ where: { id: { in: seeded.instances.map((i) => i.id) } } });
  const channels = await ring.db.channel.findMany({ where: { id: { in: seeded.channels.map((c) => c.id) } } });
  return {
    tokens: new Map(instances.map((i) => [i.id, newOnly.open(i.tokenCiphertext)])),
    webhookTokens: new Map(instances.map((i) => [i.id, newOnly.open(i.webhookTokenCiphertext!)])),
    secrets: new Map(channels.map((c) => [c.id, newOnly.open(c.secretCiphertext!)])),
  };
}

const counts = (r: RotationReport) =>
  Object.fromEntries(r.kinds.map((k: KindReport) => [k.kind, [k.reEncrypted, k.alreadyCurrent, k.underOldKey, k.unreadable.length]]));

/** IV ‖ tag ‖ ciphertext, as values were sealed before they carried a key id. */
function sealWithoutKeyId(base64Key: string, plain: string): Uint8Array<ArrayBuffer> {
  const iv = randomBytes(12);
  const cipher = createCipheriv("aes-256-gcm", Buffer.from(base64Key, "base64"), iv);
  const body = Buffer.concat([cipher.update(plain, "utf8"), cipher.final()]);
  return new Uint8Array(Buffer.concat([iv, cipher.getAuthTag(), body]));
}

describe("rotating the secret key", () => {
  it("re-encrypts instance tokens, webhook tokens and channel secrets under the new key; a second run finds nothing to do", async () => {
    const seeded = await seedUnderOldKey(3);
    const sealedBefore = await ring.db.instance.findUniqueOrThrow({ where: { id: seeded.instances[0]!.id } });
    expect(() => newOnly.open(sealedBefore.tokenCiphertext)).toThrow(/none of the configured keys/);

    const check = await rotateKey(ring, { checkOnly: true });
    expect(counts(check)).toEqual({ instance_token: [0, 0, 3, 0], instance_webhook_token: [0, 0, 3, 0], channel_secret: [0, 0, 3, 0] });

    const first = await rotateKey(ring, { batchSize: 2 });
    expect(first.complete).toBe(true);
    expect(first.keyId).toBe(newOnly.currentKeyId);
    expect(counts(first)).toEqual({ instance_token: [3, 0, 0, 0], instance_webhook_token: [3, 0, 0, 0], channel_secret: [3, 0, 0, 0] });

    const opened = await openedWithNewKeyOnly(seeded);
    for (const i of seeded.instances) {
      expect(opened.tokens.get(i.id)).toBe(i.token);
      expect(opened.webhookTokens.get(i.id)).toBe(i.webhookToken);
    }
    for (const c of seeded.channels) expect(opened.secrets.get(c.id)).toBe(c.secret);

    const again = await rotateKey(ring);
    expect(counts(again)).toEqual({ instance_token: [0, 3, 0, 0], instance_webhook_token: [0, 3, 0, 0], channel_secret: [0, 3, 0, 0] });
  });

  it("opens values sealed before key ids existed, under the current or a previous key, and re-encrypts them", async () => {
    const { id } = await addInstance(ring, { apiUrl: API, idInstance: newIdInstance(), token: newToken() });
    const other = await addInstance(ring, { apiUrl: API, idInstance: newIdInstance(), token: newToken() });
    await ring.db.instance.update({ where: { id }, data: { tokenCiphertext: sealWithoutKeyId(NEW, "token-under-new-v0") } });
    await ring.db.instance.update({ where: { id: other.id }, data: { tokenCiphertext: sealWithoutKeyId(OLD, "token-under-old-v0") } });
    const rows = await ring.db.instance.findMany({ where: { id: { in: [id, other.id] } }, orderBy: { id: "asc" } });
    expect(rows.map((r) => ring.box.unseal(r.tokenCiphertext))).toEqual(
      expect.arrayContaining([{ value: "token-under-new-v0", current: false }, { value: "token-under-old-v0", current: false }]),
    );

    const report = await rotateKey(ring);
    expect(report.kinds[0]).toMatchObject({ reEncrypted: 2, alreadyCurrent: 0, unreadable: [] });
    const after = await ring.db.instance.findUniqueOrThrow({ where: { id: other.id } });
    expect(newOnly.unseal(after.tokenCiphertext)).toEqual({ value: "token-under-old-v0", current: true });
  });

  it("resumes after an interruption: the second run finishes what the first left, and counts the rest as done", async () => {
    const seeded = await seedUnderOldKey(5);
    const stop = new AbortController();
    const first = await rotateKey(ring, { batchSize: 2, signal: stop.signal, onProgress: () => stop.abort() });
    expect(first.complete).toBe(false);
    expect(counts(first)).toEqual({ instance_token: [2, 0, 0, 0] });

    const second = await rotateKey(ring, { batchSize: 2 });
    expect(second.complete).toBe(true);
    expect(counts(second)).toEqual({ instance_token: [3, 2, 0, 0], instance_webhook_token: [5, 0, 0, 0], channel_secret: [5, 0, 0, 0] });
    const opened = await openedWithNewKeyOnly(seeded);
    expect([...opened.tokens.values()].sort()).toEqual(seeded.instances.map((i) => i.token).sort());
  });

  it("never overwrites a token set while it ran: the row changed between its read and its write keeps the new token", async () => {
    const seeded = await seedUnderOldKey(2);
    const target = seeded.instances[0]!;
    // A writer (an admin's `instance update --token`) holds the row while the rotation reads it.
    const writer = new pg.Client({ connectionString: process.env.DATABASE_URL });
    await writer.connect();
    try {
      await writer.query("BEGIN");
      await writer.query(`UPDATE "Instance" SET "tokenCiphertext" = $1 WHERE id = $2`, [Buffer.from(ring.box.seal("token-set-meanwhile")), target.id]);
      const rotation = rotateKey(ring);
      await waitFor("the rotation to wait for the writer's row", async () => {
        const { rows } = await ring.sql.query(
          `SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE 'UPDATE "Instance"%'`,
        );
        return rows.length > 0;
      });
      await writer.query("COMMIT");
      const report = await rotation;
      expect(report.kinds[0]).toMatchObject({ reEncrypted: 1, alreadyCurrent: 1, underOldKey: 0 });
    } finally {
      await writer.end();
    }
    const opened = await openedWithNewKeyOnly(seeded);
    expect(opened.tokens.get(target.id)).toBe("token-set-meanwhile");
    expect(opened.tokens.get(seeded.instances[1]!.id)).toBe(seeded.instances[1]!.token);
  });

  it("names a value no configured key opens, by its row's id, and rotates everything else", async () => {
    const seeded = await seedUnderOldKey(2);
    const lost = seeded.instances[1]!;
    const stranger = new SecretBox(randomBytes(32).toString("base64"));
    await ring.db.instance.update({ where: { id: lost.id }, data: { webhookTokenCiphertext: stranger.seal("sealed-by-a-key-nobody-kept") } });

    const report = await rotateKey(ring);
    expect(report.kinds[1]).toMatchObject({ kind: "instance_webhook_token", reEncrypted: 1, unreadable: [lost.id] });
    expect(report.kinds[0]).toMatchObject({ reEncrypted: 2, unreadable: [] });
    expect(JSON.stringify(report)).not.toContain(lost.token);
  });

  it("knows every column that holds a sealed value, so none is left under an old key", async () => {
    const { rows } = await ring.sql.query<{ table_name: string; column_name: string }>(
      `SELECT table_name, column_name FROM information_schema.columns
        WHERE table_schema = 'public' AND data_type = 'bytea' AND column_name ILIKE '%ciphertext%' ORDER BY 1, 2`,
    );
    expect(rows.map((r) => `${r.table_name}.${r.column_name}`).sort()).toEqual(SEALED_COLUMNS.map((c) => `${c.table}.${c.column}`).sort());
  });

  it("keeps live links signed under the previous key working until they expire, and only while that key is listed", async () => {
    const inst = await addInstance(ring, { apiUrl: API, idInstance: newIdInstance(), token: newToken() });
    const oldKey = Buffer.from(OLD, "base64");
    const signedBefore = signLiveToken(oldKey, inst.id, new Date(Date.now() + 3_600_000));
    expect(await openLiveLink(ring, signedBefore)).toMatchObject({ instance: { id: inst.id } });
    expect(await openLiveLink(ring, signLiveToken(oldKey, inst.id, new Date(Date.now() - 1000)))).toEqual({ refused: "expired" });
    expect(await openLiveLink(ring, signLiveToken(ring.box.hmacKey(), inst.id, new Date(Date.now() + 60_000)))).toMatchObject({ instance: { id: inst.id } });

    const dropped = testFleet({ QRFLEET_SECRET_KEY: NEW });
    try {
      expect(await openLiveLink(dropped, signedBefore)).toEqual({ refused: "tampered" });
    } finally {
      await dropped.close();
    }
  });
});
