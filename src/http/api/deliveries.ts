import type { FastifyInstance } from "fastify";
import { z } from "zod";
import type { FleetContext } from "../../fleet/context.js";
import { enableChannel, retryDelivery, retryFailedDeliveries } from "../../fleet/operators/deliveries.js";
import { CHANNEL_MODES, setChannelMode } from "../../fleet/operators/operators.js";
import { idParams } from "../input.js";
import { channel } from "./operators.js";
import { errorResponses, zodRoutes } from "./route-schema.js";

/** `{"failed": true}`, optionally with a channel id and a time: what `qrfleet deliveries retry --failed` sends. */
const replayBody = z
  .object({
    failed: z.literal(true, 'send {"failed": true}'),
    channel: z.string().optional().describe("only this channel's deliveries"),
    since: z.string().optional().describe("only deliveries created since this time (ISO 8601)"),
  })
  .strict();

const replayed = z
  .object({ replayed: z.array(z.string()).describe("the deliveries pending again"), more: z.boolean().describe("more matched than one replay moves: send it again") })
  .describe("deliveries queued again");

/** Replays by hand, channels enabled again and their delivery mode: an admin's answers to a receiver that was down or a flood. */
export async function deliveryRoutes(app: FastifyInstance, ctx: FleetContext): Promise<void> {
  const api = zodRoutes(app);
  api.post(
    "/deliveries/:id/retry",
    { schema: { summary: "send one delivery again", params: idParams, response: { 200: replayed, ...errorResponses } } },
    async (req) => retryDelivery(ctx, req.params.id),
  );

  api.post(
    "/deliveries/retry",
    { schema: { summary: "send failed deliveries again", body: replayBody, response: { 200: replayed, ...errorResponses } } },
    async (req) => retryFailedDeliveries(ctx, { channel: req.body.channel, since: req.body.since }),
  );

  api.post(
    "/channels/:id/enable",
    { schema: { summary: "enable a channel that was disabled after failures", params: idParams, response: { 200: z.object({ id: z.string(), wasDisabled: z.boolean() }), ...errorResponses } } },
    async (req) => enableChannel(ctx, req.params.id),
  );

  api.put(
    "/channels/:id/mode",
    {
      schema: {
        summary: "set whether a channel gets each event at once or grouped into digests; default follows its place",
        params: idParams,
        body: z.object({ mode: z.enum(CHANNEL_MODES) }).strict(),
        response: { 200: channel, ...errorResponses },
      },
    },
    async (req) => setChannelMode(ctx, req.params.id, req.body.mode),
  );
}
