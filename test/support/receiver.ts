import { createServer, type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";

/** A real HTTP webhook receiver: records every request and answers as scripted. */

export interface ReceivedRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  /** The raw body, exactly as sent (signatures are computed over it). */
  body: string;
  at: Date;
}

/** How to answer one request: a status (and body), after `delayMs`; or never (the sender must time out). */
export type Reply = { status: number; body?: string; delayMs?: number; headers?: Record<string, string> } | "hang";

export interface Receiver {
  url: string;
  requests: ReceivedRequest[];
  /** Answers for the next requests, in order; after they run out, `fallback` (default 200). */
  script(...replies: Reply[]): void;
  fallback(reply: Reply): void;
  /** Decides the answer from the request itself; `undefined` falls through to the script and fallback. */
  route(answer: ((req: ReceivedRequest) => Reply | undefined) | null): void;
  waitFor(predicate: (req: ReceivedRequest, index: number) => boolean, timeoutMs?: number): Promise<ReceivedRequest>;
  /** Resolves once `count` requests have arrived. */
  waitForCount(count: number, timeoutMs?: number): Promise<ReceivedRequest[]>;
  close(): Promise<void>;
}

export async function startReceiver(): Promise<Receiver> {
  const requests: ReceivedRequest[] = [];
  const waiters = new Set<() => void>();
  let queue: Reply[] = [];
  let fallback: Reply = { status: 200, body: "ok" };
  let router: ((req: ReceivedRequest) => Reply | undefined) | null = null;

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const received = { method: req.method ?? "", path: req.url ?? "", headers: req.headers, body: Buffer.concat(chunks).toString("utf8"), at: new Date() };
      requests.push(received);
      for (const w of waiters) w();
      const reply = router?.(received) ?? queue.shift() ?? fallback;
      if (reply === "hang") return;
      const answer = () => {
        res.writeHead(reply.status, { "content-type": "text/plain", ...reply.headers });
        res.end(reply.body ?? "");
      };
      if (reply.delayMs) setTimeout(answer, reply.delayMs);
      else answer();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  const port = (server.address() as AddressInfo).port;

  function until<T>(probe: () => T | undefined, timeoutMs: number, what: string): Promise<T> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const value = probe();
        if (value === undefined) return false;
        clearTimeout(timer);
        waiters.delete(onRequest);
        resolve(value);
        return true;
      };
      const onRequest = () => void check();
      const timer = setTimeout(() => {
        waiters.delete(onRequest);
        reject(new Error(`${what} within ${timeoutMs} ms (${requests.length} received)`));
      }, timeoutMs);
      if (!check()) waiters.add(onRequest);
    });
  }

  return {
    url: `http://127.0.0.1:${port}/hook`,
    requests,
    script: (...replies) => void (queue = replies),
    fallback: (reply) => void (fallback = reply),
    route: (answer) => void (router = answer),
    waitFor: (predicate, timeoutMs = 5000) => until(() => requests.find(predicate), timeoutMs, "no matching request"),
    waitForCount: (count, timeoutMs = 5000) =>
      until(() => (requests.length >= count ? requests.slice(0, count) : undefined), timeoutMs, `fewer than ${count} requests`),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
