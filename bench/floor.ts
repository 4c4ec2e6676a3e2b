// The bare client: the cheapest program that does the daemon's per-QR work, in a child process
// of its own so its CPU and memory are measured alone. Per QR frame: parse, decode, sha256, one
// INSERT, one signed POST; per connection, one email with the first QR. Nothing else — no queue,
// no retries, no bookkeeping — which is why it is the floor the daemon's cost is compared with.
import { createHash } from "node:crypto";
import nodemailer, { type Transporter } from "nodemailer";
import pg from "pg";
import { Pool as HttpPool } from "undici";
import { WebSocket } from "ws";
import { logFailure } from "./child-log.js";
import { serveParent } from "./ipc.js";
import { secretKey, sign } from "./signature.js";

export interface FloorConfig {
  simUrl: string;
  instances: Array<{ idInstance: string; token: string }>;
  databaseUrl: string;
  /** The receiver's URL for this phase, e.g. http://127.0.0.1:40123/floor */
  webhookUrl: string;
  /** whsec_… the receiver checks the signatures with. */
  secret: string;
  smtpUrl: string;
}

export interface FloorCounts {
  frames: number;
  stored: number;
  posted: number;
  emailed: number;
  /** Frames whose INSERT, POST or email failed (each is also an error line on stderr). */
  failed: number;
  connectErrors: number;
}

export interface FloorApi {
  start(config: FloorConfig): Promise<void>;
  counts(arg: null): FloorCounts;
  stop(arg: null): Promise<void>;
}

/** Upgrades in flight at once: 10,000 at a time would only queue in the kernel's backlog. */
const CONNECTS_IN_FLIGHT = 500;
const PG_POOL = 20;
const HTTP_CONNECTIONS = 20;
const DATA_URL = "data:image/png;base64,";

interface Instance {
  idInstance: string;
  url: string;
  sequence: number;
}

const counts: FloorCounts = { frames: 0, stored: 0, posted: 0, emailed: 0, failed: 0, connectErrors: 0 };
const sockets = new Set<WebSocket>();
const waiting: Instance[] = [];
let connecting = 0;
let stopping = false;
let db: pg.Pool;
let http: HttpPool;
let mail: Transporter;
let key: Buffer;
let hookPath: string;

function connect(inst: Instance): void {
  if (stopping) return;
  if (connecting >= CONNECTS_IN_FLIGHT) return void waiting.push(inst);
  connecting += 1;
  let settled = false;
  const settle = () => {
    if (settled) return;
    settled = true;
    connecting -= 1;
    const next = waiting.shift();
    if (next) connect(next);
  };
  const ws = new WebSocket(inst.url, { perMessageDeflate: false, handshakeTimeout: 10_000 });
  sockets.add(ws);
  let firstOfConnection = true;
  ws.once("open", settle);
  ws.on("error", (err) => {
    if (settled) return;
    settle();
    counts.connectErrors += 1;
    logError("connect failed", inst, err);
    setTimeout(() => connect(inst), 1000);
  });
  ws.on("close", () => sockets.delete(ws));
  ws.on("message", (data) => {
    let frame: { type?: unknown; message?: unknown };
    try {
      frame = JSON.parse(String(data)) as typeof frame;
    } catch {
      return;
    }
    if (frame.type === "qrCode" && typeof frame.message === "string") {
      const first = firstOfConnection;
      firstOfConnection = false;
      handleQr(inst, frame.message, first).catch((err: unknown) => {
        counts.failed += 1;
        logError("QR not handled", inst, err);
      });
    } else if (frame.type === "timeout") {
      ws.close();
      connect(inst);
    }
  });
}

async function handleQr(inst: Instance, base64: string, first: boolean): Promise<void> {
  counts.frames += 1;
  const png = Buffer.from(base64, "base64");
  const sha256 = createHash("sha256").update(png).digest("hex");
  await db.query("INSERT INTO qr (instance, sha256, png, received_at) VALUES ($1, $2, $3, $4)", [inst.idInstance, sha256, png, new Date()]);
  counts.stored += 1;
  inst.sequence += 1;
  const body = JSON.stringify({
    type: "qr.updated",
    timestamp: new Date().toISOString(),
    data: { idInstance: inst.idInstance, sequence: inst.sequence, qr: DATA_URL + base64 },
  });
  const id = `msg_${inst.idInstance}_${inst.sequence}`;
  const timestamp = String(Math.floor(Date.now() / 1000));
  const res = await http.request({
    path: hookPath,
    method: "POST",
    headers: { "content-type": "application/json", "webhook-id": id, "webhook-timestamp": timestamp, "webhook-signature": sign(key, id, timestamp, body) },
    body,
    headersTimeout: 10_000,
    bodyTimeout: 10_000,
  });
  await res.body.dump();
  if (res.statusCode >= 300) throw new Error(`webhook answered ${res.statusCode}`);
  counts.posted += 1;
  if (!first) return;
  await mail.sendMail({
    from: "bench-floor <floor@bench.invalid>",
    to: "ops@bench.invalid",
    subject: `Scan needed: ${inst.idInstance}`,
    text: `Scan the attached QR code with the phone that owns WhatsApp instance ${inst.idInstance}.`,
    headers: { "X-Qrfleet-Instance": inst.idInstance },
    attachments: [{ filename: "qr.png", content: png, contentType: "image/png" }],
  });
  counts.emailed += 1;
}

function logError(msg: string, inst: Instance, err: unknown): void {
  logFailure(msg, inst.idInstance, err);
}

serveParent<FloorApi>({
  async start(config) {
    db = new pg.Pool({ connectionString: config.databaseUrl, max: PG_POOL, connectionTimeoutMillis: 10_000 });
    await db.query("CREATE TABLE IF NOT EXISTS qr (id bigserial PRIMARY KEY, instance text NOT NULL, sha256 text NOT NULL, png bytea NOT NULL, received_at timestamptz NOT NULL)");
    const hook = new URL(config.webhookUrl);
    hookPath = hook.pathname;
    http = new HttpPool(hook.origin, { connections: HTTP_CONNECTIONS, keepAliveTimeout: 60_000 });
    mail = nodemailer.createTransport({ url: config.smtpUrl, pool: true, maxConnections: 5, ignoreTLS: true });
    key = secretKey(config.secret);
    const ws = config.simUrl.replace(/^http/, "ws");
    for (const i of config.instances) {
      connect({ idInstance: i.idInstance, url: `${ws}/waInstance${i.idInstance}/scanqrcode/${i.token}`, sequence: 0 });
    }
  },
  counts: () => ({ ...counts }),
  async stop() {
    stopping = true;
    waiting.length = 0;
    for (const ws of sockets) ws.terminate();
    mail?.close();
    await Promise.allSettled([http?.close(), db?.end()]);
    setImmediate(() => process.exit(0));
  },
});
