import type { Agent } from "undici";
import { guardedAgent, type OutboundPolicy } from "../../outbound-guard.js";
import type { FleetContext } from "../context.js";

/** Where this context's provider calls and QR sockets may connect (QRFLEET_ALLOW_PRIVATE_PROVIDER). */
export function providerPolicy(ctx: FleetContext): OutboundPolicy {
  return { allowPrivate: ctx.config.QRFLEET_ALLOW_PRIVATE_PROVIDER, knob: "QRFLEET_ALLOW_PRIVATE_PROVIDER", hooks: ctx.outbound };
}

/** Where this context's webhooks to operators may connect (QRFLEET_ALLOW_PRIVATE_WEBHOOKS). */
export function webhookPolicy(ctx: FleetContext): OutboundPolicy {
  return { allowPrivate: ctx.config.QRFLEET_ALLOW_PRIVATE_WEBHOOKS, knob: "QRFLEET_ALLOW_PRIVATE_WEBHOOKS", hooks: ctx.outbound };
}

const providerAgents = new WeakMap<FleetContext, Agent>();

/** The keep-alive connections of this context's provider REST calls, each to a checked address. */
export function providerAgentOf(ctx: FleetContext): Agent {
  let agent = providerAgents.get(ctx);
  if (!agent) providerAgents.set(ctx, (agent = guardedAgent(providerPolicy(ctx), { keepAliveTimeout: 30_000 })));
  return agent;
}
