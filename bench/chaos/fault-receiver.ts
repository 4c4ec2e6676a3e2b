import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Socket } from "node:net";
import { secretKey, verify } from "../signature.js";
import type { Answer, Captured } from "./captured.js";
import { holdSlot, type Hold } from "./hold.js";

/**
 * The operators' webhook endpoint of a fault run. It keeps every request in `Captured`, and
 * answers as told: 200, a 500, never (past the daemon's timeout), or a reset connection. Only a
 * request answered 200 with a valid signature has landed; `landed` counts them per webhook-id,
 * so a second landing of one id is a duplicate, and `firstLandedAt` says when its first one was.
 */
export interface FaultReceiver {
  url: string;
  /** The whsec_ secret a landing must be signed with. */
  trust(whsec: string): void;
  /** From now on, one request in `every` gets `answer` (every = 1: all of them); "ok" ends the fault. */
  fault(answer: Answer, every?: number): void;
  /** The next request that would land waits for `release()` before its 200. */
  holdNext(): Hold;
  /** Landings per webhook-id. */
  readonly landed: ReadonlyMap<string, number>;
  /** Date.now() of each webhook-id's first landing. */
  readonly firstLandedAt: ReadonlyMap<string, number>;
  readonly invalidSignatures: number;
  /** Date.now() of the last request of any kind; a drain waits for this to go quiet. */
  readonly lastRequestAt: number;
  /** Called for each landing, with its parsed body. */
  onLanded(listener: (webhookId: string, body: unknown, at: number) => void): void;
  close(): Promise<void>;
}

const MAX_BODY_BYTES = 1024 * 1024;

export async function startFaultReceiver(captured: Captured): Promise<FaultReceiver> {
  const landed = new Map<string, number>();
  const firstLandedAt = new Map<string, number>();
  const hanging = new Set<Socket>();
  const held = holdSlot();
  let key: Buffer | null = null;
  let current: { answer: Answer; every: number } = { answer: "ok", every: 1 };
  let seen = 0;
  let invalid = 0;
  let lastRequestAt = 0;
  let listener: (id: string, body: unknown, at: number) => void = () => undefined;

  const answerFor = (): Answer => (current.answer !== "ok" && seen++ % current.every === 0 ? current.answer : "ok");

  const land = (req: IncomingMessage, body: string, at: number) => {
    const id = String(req.headers["webhook-id"] ?? "");
    const timestamp = String(req.headers["webhook-timestamp"] ?? "");
    const signature = String(req.headers["webhook-signature"] ?? "");
    if (!key || !id || !verify(key, id, timestamp, body, signature)) return void (invalid += 1);
    landed.set(id, (landed.get(id) ?? 0) + 1);
    if (!firstLandedAt.has(id)) firstLandedAt.set(id, at);
    let parsed: unknown = null;
    try {
      parsed = JSON.parse(body);
    } catch {
      // A body that is not JSON still landed; the verdict counts it by id.
    }
    listener(id, parsed, at);
  };

  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size <= MAX_BODY_BYTES) chunks.push(c);
    });
    req.on("error", () => res.destroy());
    req.on("end", () => {
      const at = Date.now();
      lastRequestAt = at;
      const body = Buffer.concat(chunks).toString("utf8");
      const answer = answerFor();
      captured.webhooks.push({ path: req.url ?? "", headers: req.headers, body, at, answer });
      if (answer === "hang") return void hanging.add(req.socket);
      if (answer === "reset") return req.socket.resetAndDestroy();
      if (answer === "error500") return void res.writeHead(500, { "content-length": "5" }).end("oops!");
      const hold = held.take();
      hold?.arrive();
      void (hold?.released ?? Promise.resolve()).then(() => {
        res.writeHead(200, { "content-length": "0" }).end();
        land(req, body, at);
      });
    });
  };

  const server = createServer(handle);
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen({ host: "127.0.0.1", port: 0, backlog: 4096 }, () => resolve());
  });
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`,
    trust: (whsec) => void (key = secretKey(whsec)),
    fault: (answer, every = 1) => {
      current = { answer, every: Math.max(1, Math.round(every)) };
      seen = 0;
      if (answer !== "hang") for (const s of hanging) s.destroy();
      if (answer !== "hang") hanging.clear();
    },
    holdNext: () => held.next(),
    landed,
    firstLandedAt,
    get invalidSignatures() {
      return invalid;
    },
    get lastRequestAt() {
      return lastRequestAt;
    },
    onLanded: (l) => void (listener = l),
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of hanging) s.destroy();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
