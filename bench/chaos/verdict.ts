import pg from "pg";
import type { Captured } from "./captured.js";
import type { FaultReceiver } from "./fault-receiver.js";

/**
 * What a scenario came to, from PostgreSQL (the truth) and from what the receiver and the mail
 * server got. Lost means the outbox says sent, or still owes it, and the peer never got it; or a
 * stored QR code has no webhook delivery at all. Duplicated means a webhook-id landed twice, or an
 * email arrived more often than the outbox recorded it sent. Given up (failed after its retry
 * schedule, or expired because its QR or attempt was over) is what the design does with a peer
 * that stays away, and is counted apart.
 */
export interface Verdict {
  sessions: number;
  sessionsByStatus: Record<string, number>;
  /** Sessions still queued or running, attempts with no outcome: both must be 0. */
  sessionsOpen: number;
  attemptsOpen: number;
  /** Ended sessions that announced no final outcome, or more than one: must be 0. */
  outcomesNotOne: number;
  qrCodes: number;
  /** Stored QR codes for which no webhook delivery was even created. */
  qrWithoutDelivery: number;
  /** `duplicatesFirstLandedAt`: for each webhook-id that landed more than once, Date.now() of its first landing. */
  webhooks: ChannelVerdict & { duplicatesFirstLandedAt: number[] };
  emails: ChannelVerdict & { interrupted: number };
  invalidSignatures: number;
}

export interface ChannelVerdict {
  /** Rows the outbox says sent or still owes (pending). */
  expected: number;
  received: number;
  lost: number;
  duplicated: number;
  /** Given up by design: failed after the schedule, expired with its QR or attempt. */
  failed: number;
  expired: number;
  /** Outcome events (session.*) that were given up: these must reach a human, so 0 is the target. */
  outcomesGivenUp: number;
}

interface DeliveryRow {
  id: string;
  kind: "webhook" | "email";
  status: "pending" | "sent" | "failed" | "expired";
  type: string;
  idInstance: string;
  lastError: string | null;
}

const DELIVERIES_SQL = `
  SELECT d.id::text, c.kind::text AS kind, d.status::text AS status, e.type, i."idInstance" AS "idInstance", d."lastError"
  FROM "Delivery" d JOIN "Channel" c ON c.id = d."channelId" JOIN "Event" e ON e.id = d."eventId" JOIN "Instance" i ON i.id = e."instanceId"`;

/** A session's final outcome events (an attempt to be retried announces itself with final: false). */
const OUTCOMES_NOT_ONE_SQL = `
  SELECT count(*)::int AS n FROM "QrSession" s WHERE s."endedAt" IS NOT NULL AND (
    SELECT count(*) FROM "Event" e WHERE e."sessionId" = s.id AND e.type LIKE 'session.%' AND (e.payload->>'final') IS DISTINCT FROM 'false') <> 1`;

const QR_WITHOUT_DELIVERY_SQL = `
  SELECT count(*)::int AS n FROM "QrCode" q WHERE NOT EXISTS (
    SELECT 1 FROM "Event" e JOIN "Delivery" d ON d."eventId" = e.id JOIN "Channel" c ON c.id = d."channelId"
    WHERE e."sessionId" = q."sessionId" AND e."qrSequence" = q.sequence AND e.type = 'qr.updated' AND c.kind = 'webhook')`;

export async function judge(databaseUrl: string, receiver: FaultReceiver, captured: Captured): Promise<Verdict> {
  const client = new pg.Client({ connectionString: databaseUrl, connectionTimeoutMillis: 10_000 });
  await client.connect();
  try {
    const statuses = await client.query<{ status: string; n: number }>(`SELECT status::text, count(*)::int AS n FROM "QrSession" GROUP BY status`);
    const sessionsByStatus = Object.fromEntries(statuses.rows.map((r) => [r.status, r.n]));
    const count = async (sql: string) => (await client.query<{ n: number }>(sql)).rows[0]!.n;
    const deliveries = (await client.query<DeliveryRow>(DELIVERIES_SQL)).rows;
    return {
      sessions: statuses.rows.reduce((a, r) => a + r.n, 0),
      sessionsByStatus,
      sessionsOpen: (sessionsByStatus.queued ?? 0) + (sessionsByStatus.running ?? 0),
      attemptsOpen: await count(`SELECT count(*)::int AS n FROM "QrAttempt" WHERE "endedAt" IS NULL OR outcome IS NULL`),
      outcomesNotOne: await count(OUTCOMES_NOT_ONE_SQL),
      qrCodes: await count(`SELECT count(*)::int AS n FROM "QrCode"`),
      qrWithoutDelivery: await count(QR_WITHOUT_DELIVERY_SQL),
      webhooks: webhookVerdict(deliveries.filter((d) => d.kind === "webhook"), receiver),
      emails: emailVerdict(deliveries.filter((d) => d.kind === "email"), captured),
      invalidSignatures: receiver.invalidSignatures,
    };
  } finally {
    await client.end();
  }
}

const isOutcome = (d: DeliveryRow) => d.type !== "qr.updated";

function givenUp(rows: DeliveryRow[]) {
  return {
    failed: rows.filter((d) => d.status === "failed").length,
    expired: rows.filter((d) => d.status === "expired").length,
    outcomesGivenUp: rows.filter((d) => isOutcome(d) && (d.status === "failed" || d.status === "expired")).length,
  };
}

function webhookVerdict(rows: DeliveryRow[], receiver: FaultReceiver): Verdict["webhooks"] {
  const { landed, firstLandedAt } = receiver;
  const owed = rows.filter((d) => d.status === "sent" || d.status === "pending");
  const received = owed.filter((d) => landed.has(`msg_${d.id}`)).length;
  let duplicated = 0;
  const duplicatesFirstLandedAt: number[] = [];
  for (const [id, n] of landed) {
    duplicated += n - 1;
    if (n > 1) duplicatesFirstLandedAt.push(firstLandedAt.get(id)!);
  }
  return { expected: owed.length, received, lost: owed.length - received, duplicated, duplicatesFirstLandedAt, ...givenUp(rows) };
}

/** What crashed between handing an email to SMTP and recording it: it may or may not have arrived, and is never resent. */
const INTERRUPTED = /^interrupted while handing the email to SMTP/;

/**
 * An email names its instance and event in headers (X-Qrfleet-Instance, X-Qrfleet-Event) but not
 * its delivery, so emails are matched to rows by that pair: per pair, more arrivals than rows
 * recorded sent (or interrupted) are duplicates, fewer arrivals than rows sent are losses.
 */
function emailVerdict(rows: DeliveryRow[], captured: Captured): ChannelVerdict & { interrupted: number } {
  const arrivals = new Map<string, number>();
  for (const mail of captured.emails) {
    const key = emailKey(mail.raw.toString("latin1"));
    arrivals.set(key, (arrivals.get(key) ?? 0) + 1);
  }
  const sent = new Map<string, number>();
  const mayHaveGone = new Map<string, number>();
  let pending = 0;
  for (const d of rows) {
    const key = `${d.idInstance}|${d.type}`;
    if (d.status === "pending") pending += 1;
    if (d.status === "sent") sent.set(key, (sent.get(key) ?? 0) + 1);
    if (d.status === "sent" || (d.status === "failed" && INTERRUPTED.test(d.lastError ?? ""))) mayHaveGone.set(key, (mayHaveGone.get(key) ?? 0) + 1);
  }
  let lost = pending;
  let duplicated = 0;
  for (const key of new Set([...arrivals.keys(), ...sent.keys()])) {
    const got = arrivals.get(key) ?? 0;
    lost += Math.max(0, (sent.get(key) ?? 0) - got);
    duplicated += Math.max(0, got - (mayHaveGone.get(key) ?? 0));
  }
  const interrupted = rows.filter((d) => d.status === "failed" && INTERRUPTED.test(d.lastError ?? "")).length;
  const { failed, expired, outcomesGivenUp } = givenUp(rows);
  return {
    expected: rows.filter((d) => d.status === "sent" || d.status === "pending").length,
    received: captured.emails.length,
    lost,
    duplicated,
    failed: failed - interrupted,
    expired,
    outcomesGivenUp,
    interrupted,
  };
}

function emailKey(raw: string): string {
  const end = raw.indexOf("\r\n\r\n");
  const head = (end < 0 ? raw : raw.slice(0, end)).replace(/\r\n[ \t]+/g, " ");
  const instance = /^x-qrfleet-instance:[ \t]*(\S+)/im.exec(head)?.[1] ?? "?";
  const event = /^x-qrfleet-event:[ \t]*(\S+)/im.exec(head)?.[1] ?? "?";
  return `${instance}|${event}`;
}
