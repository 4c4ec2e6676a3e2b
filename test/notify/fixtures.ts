import { createHash, randomBytes, randomInt, randomUUID } from "node:crypto";
import { qrTextOfPixels } from "../../src/cli/qr-terminal.js";
import { PNG } from "pngjs";
import { pino } from "pino";
import QRCode from "qrcode";
import { afterAll } from "vitest";
import { openDatabase, type Db, type SessionStatus, type SessionTrigger, type Sql } from "../../src/db.js";
import { addOperator, assign, removeOperator } from "../../src/fleet/operators/operators.js";
import { recordEvent, type RecordEventInput } from "../../src/notify/outbox.js";
import type { DeliverDeps } from "../../src/notify/deliver.js";
import { DeliveryRecorder } from "../../src/notify/recorder.js";
import { DEFAULT_RETRY_POLICY, type RetryPolicy } from "../../src/notify/schedule.js";
import type { SendDeps } from "../../src/notify/send.js";
import type { Mailer } from "../../src/notify/email.js";
import { SecretBox } from "../../src/secrets.js";

/** Rows for notify tests: every id and name is fresh, so parallel tests never meet. */


export const box = new SecretBox(process.env.QRFLEET_SECRET_KEY!);
export const silent = pino({ level: "silent" });
export const PUBLIC_URL = "https://qr.example.test";

export const uid = (prefix: string) => `${prefix}-${randomBytes(5).toString("hex")}`;

export async function makeInstance(db: Db, opts: { label?: string | null; expectedPhone?: string } = {}) {
  const token = `tok${randomBytes(16).toString("hex")}`;
  const instance = await db.instance.create({
    data: {
      apiUrl: "http://127.0.0.1:9",
      idInstance: String(randomInt(1_100_000_000, 9_999_999_999)),
      tokenCiphertext: box.seal(token),
      label: opts.label === undefined ? `Sales desk ${randomBytes(2).toString("hex")}` : opts.label,
      expectedPhone: opts.expectedPhone ?? null,
    },
  });
  return { instance, token };
}

export async function makeSession(
  db: Db,
  instanceId: string,
  opts: { attempt?: number; status?: SessionStatus; maxAttempts?: number; trigger?: SessionTrigger } = {},
) {
  return db.qrSession.create({
    data: {
      instanceId,
      trigger: opts.trigger ?? "sweep",
      status: opts.status ?? "running",
      attempt: opts.attempt ?? 1,
      maxAttempts: opts.maxAttempts ?? 5,
      backoffBaseMs: 1000,
      backoffMaxMs: 10_000,
      runId: randomUUID(),
    },
  });
}

/** Content shaped like WhatsApp's link QR; scale 2 makes a small image the email must enlarge. */
export function qrContent(): string {
  return `2@${randomBytes(24).toString("base64")},${randomBytes(16).toString("base64")},${randomBytes(16).toString("base64")}`;
}

export async function addQr(db: Db, sessionId: string, sequence: number, attempt = 1, receivedAt = new Date()) {
  const content = qrContent();
  const png = await QRCode.toBuffer(content, { type: "png", scale: 2, margin: 2 });
  await db.qrCode.create({
    data: { sessionId, attempt, sequence, png: new Uint8Array(png), sha256: createHash("sha256").update(png).digest("hex"), receivedAt },
  });
  return { content, png };
}

export function decodeQr(png: Buffer): { content: string | null; width: number } {
  const img = PNG.sync.read(png);
  return { content: qrTextOfPixels(img.data, img.width, img.height), width: img.width };
}

/** An operator with the given channels, assigned to the instance (so fleet-wide defaults stay out of it). */
export async function makeOperator(db: Db, instanceId: string | null, channels: { email?: string; webhook?: string }, tier = 1) {
  const added = await addOperator({ db, box }, { name: uid("op"), ...channels });
  if (instanceId) await assign({ db }, instanceId, added.operator.id, tier);
  return added;
}

export async function cleanupOperators(db: Db, ids: string[]): Promise<void> {
  for (const id of ids.splice(0)) await removeOperator({ db }, id).catch(() => undefined);
}

export function record(db: Db, input: RecordEventInput, escalateAfter = 2): Promise<string[]> {
  return db.$transaction((tx) => recordEvent(tx, input, { escalateAfter }));
}

let pool: Sql | undefined;
afterAll(async () => {
  await pool?.end();
  pool = undefined;
});

/** What a test may set of a retry's dependencies: the senders' own, the retry policy's, and the hooks. */
export type DepsOverrides = Partial<SendDeps> & Partial<Pick<DeliverDeps, "health" | "onResult" | "leaseMs">> & { retry?: Partial<RetryPolicy> };

export function deps(db: Db, mailer: Mailer, overrides: DepsOverrides = {}): DeliverDeps {
  const { retry, health, onResult, leaseMs, ...send } = overrides;
  pool ??= openDatabase(process.env.DATABASE_URL!, 3).sql;
  return {
    db, health, onResult, leaseMs,
    send: { box, mailer, publicUrl: PUBLIC_URL, liveLinkTtlS: 3600, webhookTimeoutMs: 1000, ...send },
    recorder: new DeliveryRecorder(pool),
    policy: { ...DEFAULT_RETRY_POLICY, multiplier: 0.001, ...retry },
  };
}

/** A mailer that must not be used: webhook tests hand it over to prove no email goes out. */
export const noMailer: Mailer = {
  send: () => Promise.reject(new Error("no email expected in this test")),
  close: async () => undefined,
};
