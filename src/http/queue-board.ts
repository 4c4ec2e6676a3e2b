import { createBullBoard } from "@bull-board/api";
import { BullMQAdapter } from "@bull-board/api/bullMQAdapter";
import { FastifyAdapter } from "@bull-board/fastify";
import type { FastifyInstance } from "fastify";
import type { FleetContext } from "../fleet/context.js";
import { requireBasicOrBearer } from "./auth.js";

export const QUEUE_BOARD_PATH = "/admin/queues";

/**
 * The board's page and API: its own scripts only, never framed, never cached. Styles may be inline,
 * because bull-board's interface sets them so (a style cannot run code; scripts stay 'self'). The
 * page as bull-board ships it links a web font from a third-party host; that link is taken out,
 * and the policy would refuse it anyway.
 */
const BOARD_HEADERS: Record<string, string> = {
  "content-security-policy": [
    "default-src 'self'", "script-src 'self'", "style-src 'self' 'unsafe-inline'", "img-src 'self' data:", "font-src 'self'",
    "connect-src 'self'", "object-src 'none'", "base-uri 'self'", "form-action 'self'", "frame-ancestors 'none'",
  ].join("; "),
  "referrer-policy": "no-referrer",
  "x-frame-options": "DENY",
  "x-content-type-options": "nosniff",
  "cache-control": "no-store",
};
const THIRD_PARTY_LINK = /<link\b[^>]*href="https?:\/\/[^"]*"[^>]*>/gi;

/**
 * bull-board for every queue, behind Basic auth (any user, the admin token as password). Read-only
 * (no retry, clean, obliterate, add or pause) unless QRFLEET_QUEUE_BOARD_WRITABLE says otherwise.
 */
export async function queueBoard(app: FastifyInstance, opts: { ctx: FleetContext }): Promise<void> {
  const { queues, config } = opts.ctx;
  const readOnlyMode = !config.QRFLEET_QUEUE_BOARD_WRITABLE;
  const serverAdapter = new FastifyAdapter();
  serverAdapter.setBasePath(QUEUE_BOARD_PATH);
  createBullBoard({
    queues: [queues.session, queues.notify, queues.sweep, queues.settings].map((q) => new BullMQAdapter(q, { readOnlyMode })),
    serverAdapter,
    options: { uiConfig: { boardTitle: "qrfleet" } },
  });
  app.addHook("onRequest", requireBasicOrBearer(opts.ctx));
  app.addHook("onSend", async (_req, reply, payload) => {
    reply.headers(BOARD_HEADERS);
    const html = String(reply.getHeader("content-type") ?? "").startsWith("text/html");
    return html && typeof payload === "string" ? payload.replace(THIRD_PARTY_LINK, "") : payload;
  });
  await app.register(serverAdapter.registerPlugin(), { prefix: QUEUE_BOARD_PATH });
}
