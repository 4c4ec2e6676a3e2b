import { DelayedError, type Job } from "bullmq";
import type { FleetContext } from "../src/fleet/context.js";
import { sendDelivery, type DeliverDeps } from "../src/notify/deliver.js";
import type { NotifyJob } from "../src/queues.js";

/**
 * The notify queue's processor: one job per Delivery row. The row, not the job, knows whether it
 * was sent, so a redelivered job (crash between send and ack) is a no-op once the send is recorded.
 */
export function createNotifyProcessor(ctx: FleetContext, deps: DeliverDeps) {
  const observed: DeliverDeps = { ...deps, onResult: (r) => ctx.events.emit("delivery:result", { ...r, receivedAt: null }) };
  return async (job: Job<NotifyJob>, token?: string): Promise<string> => {
    const result = await sendDelivery(observed, job.data.deliveryId);
    if (result.status === "retry" && result.retryInMs !== undefined) {
      // The retry schedule belongs to the delivery (hours for outcomes, seconds for a QR), not to BullMQ.
      await job.moveToDelayed(Date.now() + result.retryInMs, token);
      throw new DelayedError();
    }
    return result.status;
  };
}
