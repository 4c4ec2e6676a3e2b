import { qrTextOf } from "../../src/cli/qr-terminal.js";
import { WebSocket } from "ws";
import type { Simulator } from "../../src/simulator/index.js";

export interface Received {
  raw: string;
  /** The parsed frame, or undefined when the frame is not JSON. */
  frame: { type: string; message: unknown } | undefined;
  /** simulator.currentQr() read the moment the frame arrived. */
  currentQr: string | null;
}

export interface SessionResult {
  received: Received[];
  code: number;
}

export function socketUrl(sim: Simulator, idInstance: string, token: string): string {
  return `${sim.url.replace(/^http/, "ws")}/waInstance${idInstance}/scanqrcode/${token}`;
}

/** Opens a QR socket and records every frame until the server closes it. */
export function openSession(sim: Simulator, idInstance: string, token: string) {
  const ws = new WebSocket(socketUrl(sim, idInstance, token));
  const received: Received[] = [];
  ws.on("message", (data) => {
    const raw = String(data);
    let frame: Received["frame"];
    try {
      frame = JSON.parse(raw) as Received["frame"];
    } catch {
      frame = undefined;
    }
    received.push({ raw, frame, currentQr: sim.currentQr(idInstance) });
  });
  const done = new Promise<SessionResult>((resolve, reject) => {
    ws.on("close", (code) => resolve({ received, code }));
    ws.on("unexpected-response", (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
    ws.on("error", () => undefined);
  });
  const opened = new Promise<void>((resolve) => ws.once("open", () => resolve()));
  return { ws, received, done, opened };
}

export function runSession(sim: Simulator, idInstance: string, token: string): Promise<SessionResult> {
  return openSession(sim, idInstance, token).done;
}

/** The HTTP status the server answers an upgrade with (101 when it accepts). */
export function upgradeStatus(url: string): Promise<number> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url);
    ws.on("unexpected-response", (req, res) => {
      resolve(res.statusCode ?? 0);
      req.destroy();
    });
    ws.on("open", () => {
      resolve(101);
      ws.terminate();
    });
    ws.on("error", () => resolve(0));
  });
}

export function types(result: SessionResult): string[] {
  return result.received.map((r) => r.frame?.type ?? "<not json>");
}

export function decodeQr(base64: string): string | null {
  return qrTextOf(Buffer.from(base64, "base64"));
}

export async function waitFor(condition: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 10));
  }
}

export async function getJson(url: string, init?: RequestInit): Promise<{ status: number; body: unknown }> {
  const res = await fetch(url, init);
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // keep the text
  }
  return { status: res.status, body };
}

export function restUrl(sim: Simulator, idInstance: string, method: string, token: string): string {
  return `${sim.url}/waInstance${idInstance}/${method}/${token}`;
}
