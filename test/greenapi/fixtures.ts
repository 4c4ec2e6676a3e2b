import QRCode from "qrcode";
import { runSocketAttempt, type SocketAttemptOptions, type QrSocket, type QrSocketListener } from "../../src/greenapi/socket-attempt.js";
import type { QrImage, AttemptNotice, AttemptOutcome } from "../../src/greenapi/types.js";

/** A small, real QR PNG whose content is `text`. */
export function qrPng(text: string): Promise<Buffer> {
  return QRCode.toBuffer(text, { type: "png", width: 64, margin: 1 });
}

export function qrFrame(png: Buffer): string {
  return JSON.stringify({ type: "qrCode", message: png.toString("base64") });
}

export function frame(type: string, message: unknown): string {
  return JSON.stringify({ type, message });
}

/**
 * The provider side of a QR socket, in memory: the test pushes frames and closes, and can
 * see whether the session closed it.
 */
export class FakeQrSocket implements QrSocket {
  listener: QrSocketListener | undefined;
  closedByClient = 0;
  private held: Array<(l: QrSocketListener) => void> = [];

  listen(listener: QrSocketListener): void {
    if (this.listener) throw new Error("listen called twice");
    this.listener = listener;
    for (const event of this.held.splice(0)) event(listener);
  }

  close(): void {
    this.closedByClient++;
  }

  send(data: string | Uint8Array): void {
    this.emit((l) => l.message(data));
  }

  serverClose(code = 1006, reason = ""): void {
    this.emit((l) => l.close(code, reason));
  }

  fail(err: Error): void {
    this.emit((l) => l.error(err));
  }

  private emit(event: (l: QrSocketListener) => void): void {
    if (this.listener) event(this.listener);
    else this.held.push(event);
  }
}

/** Polls `check` until it returns true or the deadline passes. */
export async function waitFor(check: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 5));
  }
}

export interface Harness {
  socket: FakeQrSocket;
  images: QrImage[];
  notices: AttemptNotice[];
  outcome: Promise<AttemptOutcome>;
}

/** Starts a session over an in-memory socket that opens at once. */
export function start(overrides: Partial<SocketAttemptOptions> = {}): Harness {
  const socket = new FakeQrSocket();
  const images: QrImage[] = [];
  const notices: AttemptNotice[] = [];
  const outcome = runSocketAttempt({
    connect: async () => socket,
    onQr: async (qr) => {
      images.push(qr);
    },
    onNotice: (n) => notices.push(n),
    silenceMs: 5_000,
    maxMs: 10_000,
    ...overrides,
  });
  return { socket, images, notices, outcome };
}
