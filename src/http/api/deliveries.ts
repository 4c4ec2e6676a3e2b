import type { FastifyInstance } from "fastify";
import { z } from "zod";
import type { FleetContext } from "../../fleet/context.js";
import { enableChannel, retryDelivery, retryFailedDeliveries } from "../../fleet/deliveries.js";
import { idParams, parseInput } from "../input.js";

/** `{"failed": true}`, optionally with a channel id and a time: what `qrfleet deliveries retry --failed` sends. */
const replayBody = z
  .object({ failed: z.literal(true, 'send {"failed": true}'), channel: z.string().optional(), since: z.string().optional() })
  .strict();

/** Replays by hand and channels enabled again: an admin's answers to a receiver that was down. */
export async function deliveryRoutes(app: FastifyInstance, ctx: FleetContext): Promise<void> {
  app.post("/deliveries/:id/retry", async (req) => retryDelivery(ctx, parseInput(idParams, req.params).id));

  app.post("/deliveries/retry", async (req) => {
    const { channel, since } = parseInput(replayBody, req.body);
    return retryFailedDeliveries(ctx, { channel, since });
  });

  app.post("/channels/:id/enable", async (req) => enableChannel(ctx, parseInput(idParams, req.params).id));
}
