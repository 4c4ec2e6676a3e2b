import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from "fastify";
import { Registry } from "prom-client";
import { buildHttpApp } from "../../src/http/app.js";
import { observeFleet } from "../../src/fleet/observe/observe.js";
import { newPrefix, testFleet } from "../support/fleet.js";

export const ADMIN_TOKEN = "test-admin-token-0123456789";
export const auth = { authorization: `Bearer ${ADMIN_TOKEN}` };

export type TestFleet = ReturnType<typeof testFleet>;

/** A fleet context on its own Redis prefix and the HTTP app over it; no worker runs. */
export async function startHttp(env: Record<string, string> = {}): Promise<{ ctx: TestFleet; app: FastifyInstance; close(): Promise<void> }> {
  const ctx = testFleet({ QRFLEET_REDIS_PREFIX: newPrefix(), ...env });
  const { registry } = observeFleet(ctx.events, ctx.log, new Registry());
  const app = await buildHttpApp(ctx, { metrics: registry, logRequests: false });
  await app.ready();
  return {
    ctx,
    app,
    async close() {
      await app.close();
      await ctx.close();
    },
  };
}

/** Every response body a test saw, so one assertion can check that no secret ever left. */
export class Recorder {
  readonly bodies: string[] = [];

  constructor(private readonly app: FastifyInstance) {}

  async request(opts: InjectOptions): Promise<LightMyRequestResponse> {
    const res = await this.app.inject(opts);
    this.bodies.push(res.body);
    return res;
  }

  /** Admin request with the bearer token and a JSON body. */
  api(method: InjectOptions["method"], url: string, payload?: unknown): Promise<LightMyRequestResponse> {
    return this.request({ method, url, headers: auth, ...(payload !== undefined && { payload: payload as InjectOptions["payload"] }) });
  }
}
