import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import fc from "fast-check";
import { WebSocketServer, type WebSocket } from "ws";
import { MAX_FRAME_BYTES } from "../../src/greenapi/frames.js";
import { goodQrFrame, hostileFrame } from "./hostile.js";

/**
 * An in-process provider that answers the QR websocket of each instance with a scripted sequence
 * of hostile frames: real TCP, real ws framing, on 127.0.0.1. Every other request gets a 404.
 */

export type Step =
  /** good: a well-formed QR frame, which cannot end the attempt. */
  | { kind: "frame"; data: string | Uint8Array; good?: boolean }
  /** `count` distinct good QR frames at once. */
  | { kind: "burst"; count: number }
  | { kind: "wait"; ms: number };

/** How the provider's side ends after its steps: a frame that ends the attempt, a close, a cut, a frame over maxPayload, or nothing. */
export type Ending =
  | { kind: "terminal"; frame: string }
  | { kind: "close"; code: number; reason: string }
  | { kind: "terminate" }
  | { kind: "oversized" }
  | { kind: "silence" };

export interface Script {
  steps: Step[];
  ending: Ending;
}

export interface HostileProvider {
  url: string;
  define(idInstance: string, script: Script): void;
  /** Sockets accepted and not yet closed. */
  open(): number;
  close(): Promise<void>;
}

export const TERMINALS = {
  authorized: JSON.stringify({ type: "accountData", message: { wid: "79001234567@c.us" } }),
  alreadyLogged: JSON.stringify({ type: "alreadyLogged", message: "instance account already authorized" }),
  timeout: JSON.stringify({ type: "timeout", message: "timeout" }),
  error: JSON.stringify({ type: "error", message: "provider says no" }),
};

/** A script: hostile frames, bursts and short waits, then an ending. */
export function scriptOf(good: Buffer[], opts: { maxSteps: number; maxBurst: number }): fc.Arbitrary<Script> {
  const step: fc.Arbitrary<Step> = fc.oneof(
    { weight: 4, arbitrary: hostileFrame(good).map((data) => ({ kind: "frame" as const, data })) },
    { weight: 3, arbitrary: fc.nat(1000).map((k) => ({ kind: "frame" as const, data: goodQrFrame(good, k), good: true })) },
    { weight: 1, arbitrary: fc.integer({ min: 2, max: opts.maxBurst }).map((count) => ({ kind: "burst" as const, count })) },
    { weight: 1, arbitrary: fc.integer({ min: 1, max: 60 }).map((ms) => ({ kind: "wait" as const, ms })) },
  );
  const ending: fc.Arbitrary<Ending> = fc.oneof(
    { weight: 6, arbitrary: fc.constantFrom(...Object.values(TERMINALS)).map((frame) => ({ kind: "terminal" as const, frame })) },
    { weight: 2, arbitrary: fc.record({ code: fc.constantFrom(1000, 1001, 1011, 4000, 4999), reason: fc.constantFrom("", "bye", "bye\u0000now", "é".repeat(60)) }).map((c) => ({ kind: "close" as const, ...c })) },
    { weight: 1, arbitrary: fc.constant({ kind: "terminate" as const }) },
    { weight: 1, arbitrary: fc.constant({ kind: "oversized" as const }) },
    { weight: 1, arbitrary: fc.constant({ kind: "silence" as const }) },
  );
  return fc.record({ steps: fc.array(step, { maxLength: opts.maxSteps }), ending });
}

export async function startHostileProvider(good: Buffer[]): Promise<HostileProvider> {
  const scripts = new Map<string, Script>();
  const sockets = new Set<WebSocket>();
  const server: Server = createServer((_req, res) => {
    res.writeHead(404, { "content-type": "application/json" });
    res.end('{"error":"not here"}');
  });
  const wss = new WebSocketServer({ server, perMessageDeflate: false, maxPayload: 8 * MAX_FRAME_BYTES });
  wss.on("connection", (ws, req) => {
    const id = /waInstance(\d+)\//.exec(req.url ?? "")?.[1] ?? "";
    const script = scripts.get(id);
    sockets.add(ws);
    ws.on("close", () => sockets.delete(ws));
    ws.on("error", () => undefined);
    if (!script) return ws.close(1011, "no script");
    void play(ws, script, good);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    define: (id, script) => void scripts.set(id, script),
    open: () => sockets.size,
    async close() {
      for (const ws of sockets) ws.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

let burstSerial = 0;

async function play(ws: WebSocket, script: Script, good: Buffer[]): Promise<void> {
  const send = (data: string | Uint8Array) => {
    if (ws.readyState === ws.OPEN) ws.send(data, { binary: typeof data !== "string" });
  };
  for (const step of script.steps) {
    if (ws.readyState !== ws.OPEN) return;
    if (step.kind === "frame") send(step.data);
    else if (step.kind === "burst") for (let k = 0; k < step.count; k += 1) send(goodQrFrame(good, 10_000 + burstSerial++));
    else await new Promise((r) => setTimeout(r, step.ms));
  }
  const end = script.ending;
  if (end.kind === "terminal") {
    send(end.frame);
    ws.close(1000);
  } else if (end.kind === "close") ws.close(end.code, Buffer.from(end.reason).subarray(0, 123).toString());
  else if (end.kind === "terminate") ws.terminate();
  else if (end.kind === "oversized") send("x".repeat(MAX_FRAME_BYTES + 1));
}
