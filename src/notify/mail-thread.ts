import { Worker } from "node:worker_threads";
import type { EmailRequest, Mailer, MailerOptions } from "./email.js";
import type { TryResult } from "./types.js";

/**
 * A Mailer whose composing and sending run on a thread of their own. A fleet's sessions start
 * together, so their first-QR emails come hundreds a second, each about a millisecond of CPU
 * (the QR enlarged, the MIME written): on the thread that reads the QR sockets they held every
 * webhook behind them; here they use the machine's other core.
 */

export interface MailThreadOptions extends MailerOptions {
  smtpUrl: string;
  from: string;
}

type Reply = { id: number; result: TryResult };

const STOPPED: TryResult = { kind: "retryable", status: null, body: null, error: "the mail thread stopped before the email was sent" };

/**
 * Built, the thread runs mail-worker.js. From the TypeScript sources (the tests run those) a
 * thread does not inherit tsx's loader, so a two-line module registers it, then loads the .ts.
 */
function workerEntry(): URL {
  if (!import.meta.url.endsWith(".ts")) return new URL("./mail-worker.js", import.meta.url);
  const entry = new URL("./mail-worker.ts", import.meta.url).href;
  const boot = `import { register } from ${JSON.stringify(import.meta.resolve("tsx/esm/api"))}; register(); await import(${JSON.stringify(entry)});`;
  return new URL(`data:text/javascript,${encodeURIComponent(boot)}`);
}

export function createThreadMailer(opts: MailThreadOptions): Mailer {
  const pending = new Map<number, (r: TryResult) => void>();
  let nextId = 0;
  let worker: Worker | null = null;
  let closed = false;

  const settleAll = () => {
    for (const resolve of pending.values()) resolve(STOPPED);
    pending.clear();
  };
  const start = (): Worker => {
    const w = new Worker(workerEntry(), { workerData: opts });
    w.on("message", ({ id, result }: Reply) => {
      pending.get(id)?.(result);
      pending.delete(id);
    });
    // A thread that dies takes its emails with it: they come back as retryable, and the next send starts a new thread.
    w.on("error", () => undefined);
    w.on("exit", () => {
      if (worker === w) worker = null;
      settleAll();
    });
    return w;
  };

  return {
    send(request: EmailRequest): Promise<TryResult> {
      if (closed) return Promise.resolve(STOPPED);
      worker ??= start();
      const id = nextId++;
      return new Promise<TryResult>((resolve) => {
        pending.set(id, resolve);
        worker!.postMessage({ id, request });
      });
    },
    async close() {
      closed = true;
      const w = worker;
      if (!w) return;
      const exited = new Promise<void>((resolve) => w.once("exit", () => resolve()));
      w.postMessage("close");
      const timer = setTimeout(() => void w.terminate(), 5_000);
      await exited;
      clearTimeout(timer);
    },
  };
}
