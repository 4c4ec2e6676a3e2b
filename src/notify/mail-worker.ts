import { parentPort, workerData } from "node:worker_threads";
import { createMailer, type EmailRequest } from "./email.js";
import type { MailThreadOptions } from "./mail-thread.js";
import type { QrView } from "./types.js";

/** The mail thread (see mail-thread.ts): composes and sends what the main thread hands it. */

const data = workerData as MailThreadOptions;
const { smtpUrl, from, ...opts } = data;
const mailer = createMailer(smtpUrl, from, opts);
let open = 0;
let closing = false;

/** A Buffer arrives as a plain Uint8Array: give the image its Buffer back. */
function withBuffer(qr: QrView | null): QrView | null {
  return qr ? { ...qr, png: Buffer.from(qr.png.buffer, qr.png.byteOffset, qr.png.byteLength) } : null;
}

async function closeWhenIdle(): Promise<void> {
  if (!closing || open > 0) return;
  await mailer.close();
  parentPort!.close();
}

parentPort!.on("message", (message: { id: number; request: EmailRequest } | "close") => {
  if (message === "close") {
    closing = true;
    return void closeWhenIdle();
  }
  open += 1;
  const { id, request } = message;
  void mailer.send("view" in request ? { ...request, qr: withBuffer(request.qr) } : request).then((result) => {
    open -= 1;
    parentPort!.postMessage({ id, result });
    return closeWhenIdle();
  });
});
