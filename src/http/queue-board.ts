import { createBullBoard } from "@bull-board/api";
import { BullMQAdapter } from "@bull-board/api/bullMQAdapter";
import { FastifyAdapter } from "@bull-board/fastify";
import type { FastifyInstance } from "fastify";
import type { FleetContext } from "../fleet/context.js";
import { requireBasicOrBearer } from "./auth.js";

export const QUEUE_BOARD_PATH = "/admin/queues";

/** bull-board for the three queues, behind Basic auth (any user, the admin token as password). */
export async function queueBoard(app: FastifyInstance, opts: { ctx: FleetContext }): Promise<void> {
  const { queues, config } = opts.ctx;
  const serverAdapter = new FastifyAdapter();
  serverAdapter.setBasePath(QUEUE_BOARD_PATH);
  createBullBoard({
    queues: [queues.session, queues.notify, queues.sweep, queues.slices, queues.settings].map((q) => new BullMQAdapter(q)),
    serverAdapter,
    options: { uiConfig: { boardTitle: "qrfleet" } },
  });
  app.addHook("onRequest", requireBasicOrBearer(config.QRFLEET_ADMIN_TOKEN));
  await app.register(serverAdapter.registerPlugin(), { prefix: QUEUE_BOARD_PATH });
}
