import { createHash, randomBytes } from "node:crypto";
import pg from "pg";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { openDatabase } from "../../src/db.js";
import { QrStore } from "../../src/fleet/sessions/qr-store.js";
import type { QrImage } from "../../src/greenapi/types.js";
import { cleanupOperators, makeInstance, makeOperator, makeSession } from "../notify/fixtures.js";

/** The per-QR statement against real PostgreSQL: fencing, counters, routing, and what a slow database does. */

const { db, sql } = openDatabase(process.env.DATABASE_URL!, 4);
const operators: string[] = [];
afterEach(() => cleanupOperators(db, operators));
afterAll(() => db.$disconnect());

const LEASE_MS = 60_000;
const store = (highWater = 1000) => new QrStore(sql, { escalateAfter: 2, leaseMs: LEASE_MS, highWater });

function image(): QrImage {
  // Any bytes do here: the statement stores what it is given; the frame check is the socket's.
  const png = Buffer.concat([Buffer.from("89504e470d0a1a0a", "hex"), randomBytes(64)]);
  return { png, sha256: createHash("sha256").update(png).digest("hex"), number: 1, receivedAt: new Date() };
}

async function scene() {
  const { instance } = await makeInstance(db);
  const session = await makeSession(db, instance.id);
  await db.qrAttempt.create({ data: { sessionId: session.id, number: 1 } });
  const op = await makeOperator(db, instance.id, { email: `ops-${randomBytes(3).toString("hex")}@example.test`, webhook: "https://hooks.example.test/q" });
  operators.push(op.operator.id);
  const kindOf = new Map(op.operator.channels.map((c) => [c.id, c.kind]));
  const qr = (img = image(), first = false) => ({ sessionId: session.id, runId: session.runId!, attempt: 1, first, image: img });
  return { instance, session, kindOf, qr };
}

describe("the per-QR statement", () => {
  it("stores an image with its event and one delivery per channel, leased to the process that will send them", async () => {
    const s = await scene();
    const first = await store().store(s.qr(image(), true));
    expect(first).toMatchObject({ kind: "stored", sequence: 1, firstOfAttempt: true });
    if (first.kind !== "stored") throw new Error("not stored");
    expect(first.deliveries.map((d) => [s.kindOf.get(d.channelId), d.status]).sort()).toEqual([["email", "pending"], ["webhook", "pending"]]);
    const second = await store().store(s.qr());
    expect(second).toMatchObject({ kind: "stored", sequence: 2, firstOfAttempt: false });
    if (second.kind !== "stored") throw new Error("not stored");
    expect(second.deliveries.map((d) => s.kindOf.get(d.channelId))).toEqual(["webhook"]); // email: first QR of an attempt only

    const row = await db.delivery.findUniqueOrThrow({ where: { id: first.deliveries[0]!.id }, include: { event: true } });
    expect(row.nextTryAt.getTime()).toBeGreaterThan(Date.now() + LEASE_MS / 2);
    expect(row.event).toMatchObject({ type: "qr.updated", qrSequence: 1, attempt: 1 });
    expect(row.event.payload).toMatchObject({ sequence: 1, firstOfAttempt: true });
    const session = await db.qrSession.findUniqueOrThrow({ where: { id: s.session.id } });
    expect(session.qrCount).toBe(2); // the live page follows it; the attempt's own count is written when it ends
  });

  it("stores many sessions' images in one statement, each byte for byte and in order", async () => {
    const [a, b] = await Promise.all([scene(), scene()]);
    const qrs = store();
    const images = [image(), image(), image(), image()];
    const results = await Promise.all([qrs.store(a.qr(images[0])), qrs.store(b.qr(images[1])), qrs.store(a.qr(images[2])), qrs.store(b.qr(images[3]))]);
    expect(results.map((r) => (r.kind === "stored" ? r.sequence : r.kind))).toEqual([1, 1, 2, 2]);
    const stored = await db.qrCode.findMany({ where: { sessionId: { in: [a.session.id, b.session.id] } } });
    const bytes = (sessionId: string, sequence: number) => Buffer.from(stored.find((c) => c.sessionId === sessionId && c.sequence === sequence)!.png);
    expect([bytes(a.session.id, 1), bytes(b.session.id, 1), bytes(a.session.id, 2), bytes(b.session.id, 2)]).toEqual(images.map((i) => i.png));
  });

  it("refuses a run that no longer holds its session, and an image stored before", async () => {
    const s = await scene();
    const img = image();
    expect((await store().store(s.qr(img))).kind).toBe("stored");
    expect(await store().store(s.qr(img))).toEqual({ kind: "duplicate" });
    expect(await store().store({ ...s.qr(), runId: "00000000-0000-4000-8000-000000000000" })).toEqual({ kind: "stale" });
    await db.qrSession.update({ where: { id: s.session.id }, data: { status: "cancelled" } });
    expect(await store().store(s.qr())).toEqual({ kind: "stale" });
    expect(await db.qrCode.count({ where: { sessionId: s.session.id } })).toBe(1);
  });

  it("waits out a locked session without failing; then stores every image but announces only the newest by webhook", async () => {
    const s = await scene();
    const qrs = store(2);
    // Another transaction holds the session row: the database is slow, as far as the store can tell.
    const blocker = new pg.Client({ connectionString: process.env.DATABASE_URL });
    await blocker.connect();
    await blocker.query("BEGIN");
    await blocker.query(`SELECT 1 FROM "QrSession" WHERE id = $1 FOR UPDATE`, [s.session.id]);
    const blocked = qrs.store(s.qr());
    await new Promise((r) => setTimeout(r, 50)); // the first statement is now waiting for the lock
    const piled = [1, 2, 3, 4].map(() => qrs.store(s.qr()));
    expect(qrs.congested).toBe(true);
    let roomAt = 0;
    const room = qrs.room().then(() => (roomAt = Date.now()));
    await new Promise((r) => setTimeout(r, 300));
    expect(roomAt).toBe(0); // intake is held back while nothing drains
    const releasedAt = Date.now();
    await blocker.query("COMMIT");
    await blocker.end();

    const results = await Promise.all([blocked, ...piled]);
    await room;
    expect(roomAt).toBeGreaterThanOrEqual(releasedAt);
    expect(results.map((r) => (r.kind === "stored" ? r.sequence : r.kind))).toEqual([1, 2, 3, 4, 5]);
    const webhookStatus = results.map((r) => (r.kind === "stored" ? r.deliveries.find((d) => s.kindOf.get(d.channelId) === "webhook")?.status : null));
    expect(webhookStatus).toEqual(["pending", "expired", "expired", "expired", "pending"]);
    const expired = await db.delivery.findMany({ where: { event: { sessionId: s.session.id }, status: "expired" } });
    expect(expired.map((d) => d.lastError)).toEqual(Array(3).fill("expired: a newer QR superseded it before it was sent"));
  });
});
