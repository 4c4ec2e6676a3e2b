import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createTcpServer, type AddressInfo, type Socket } from "node:net";
import { WebSocketServer, type WebSocket } from "ws";

/**
 * A stand-in provider on a real port for the REST client and socket tests: each test sets
 * what REST calls answer and what an upgrade does.
 */
export interface StandInProvider {
  apiUrl: string;
  requests: Array<{ method: string; url: string; body: string; contentType: string | undefined }>;
  rest: (req: IncomingMessage, res: ServerResponse, body: string) => void;
  /** Return a status (and headers) to refuse the upgrade, "hang" to never answer, or a function that runs the socket. */
  upgrade: (req: IncomingMessage) => number | Refusal | "hang" | ((ws: WebSocket) => void);
  /** Server-side sockets, to see whether the client closed them. */
  sockets: WebSocket[];
  close(): Promise<void>;
}

export interface Refusal {
  status: number;
  headers: Record<string, string>;
}

export async function startProvider(): Promise<StandInProvider> {
  const wss = new WebSocketServer({ noServer: true });
  const raw = new Set<Socket>();
  const provider: StandInProvider = {
    apiUrl: "",
    requests: [],
    sockets: [],
    rest: (_req, res) => {
      res.writeHead(500).end();
    },
    upgrade: () => 500,
    close: async () => {
      for (const ws of provider.sockets) ws.terminate();
      for (const s of raw) s.destroy();
      wss.close();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks).toString("utf8");
      provider.requests.push({ method: req.method ?? "", url: req.url ?? "", body, contentType: req.headers["content-type"] });
      provider.rest(req, res, body);
    });
  });
  server.on("connection", (s: Socket) => {
    raw.add(s);
    s.on("close", () => raw.delete(s));
  });
  server.on("upgrade", (req: IncomingMessage, socket: Socket, head: Buffer) => {
    provider.requests.push({ method: "UPGRADE", url: req.url ?? "", body: "", contentType: undefined });
    const plan = provider.upgrade(req);
    if (plan === "hang") return;
    if (typeof plan === "number" || (typeof plan === "object" && "status" in plan)) {
      const { status, headers } = typeof plan === "number" ? { status: plan, headers: {} } : plan;
      const extra = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join("");
      socket.end(`HTTP/1.1 ${status} Refused\r\n${extra}Content-Length: 0\r\nConnection: close\r\n\r\n`);
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      provider.sockets.push(ws);
      plan(ws);
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  provider.apiUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return provider;
}

export function json(res: ServerResponse, status: number, value: unknown): void {
  const body = typeof value === "string" ? value : JSON.stringify(value);
  res.writeHead(status, { "content-type": "application/json" }).end(body);
}

/** A loopback port nothing listens on (taken, then released): for "connection refused" cases. */
export async function freePort(): Promise<number> {
  const srv = createTcpServer();
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  const { port } = srv.address() as AddressInfo;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}
