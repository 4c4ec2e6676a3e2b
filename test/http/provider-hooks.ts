import { expect } from "vitest";
import { newIdInstance, newToken } from "../support/fleet.js";
import { Recorder, startHttp } from "./harness.js";

/** The provider's side of /hooks/greenapi for the HTTP tests: instances with webhook tokens, and their webhooks. */

export interface HookedInstance {
  id: string;
  idInstance: string;
  hookToken: string;
}

export class ProviderHooks {
  /** Every token handed out, for the check that no response ever carried one. */
  readonly secrets: string[] = [];

  constructor(private readonly http: Recorder) {}

  async addInstance(withHookToken = true): Promise<HookedInstance> {
    const token = newToken();
    const hookToken = `hook-${newToken()}`;
    this.secrets.push(token, hookToken);
    const res = await this.http.api("POST", "/api/instances", {
      apiUrl: "https://7103.api.greenapi.com",
      idInstance: newIdInstance(),
      token,
      ...(withHookToken && { webhookToken: hookToken }),
    });
    expect(res.statusCode).toBe(201);
    return { ...res.json(), hookToken };
  }

  hook(payload: unknown, authorization?: string) {
    return this.http.request({
      method: "POST",
      url: "/hooks/greenapi",
      headers: authorization === undefined ? {} : { authorization },
      payload: payload as object,
    });
  }
}

export const nowS = () => Math.floor(Date.now() / 1000);

export function stateChanged(idInstance: string | number, stateInstance: string, timestamp = nowS()) {
  return {
    typeWebhook: "stateInstanceChanged",
    instanceData: { idInstance: Number(idInstance), wid: "79001234567@c.us", typeInstance: "whatsapp" },
    timestamp,
    stateInstance,
  };
}

/** The HTTP app over a fleet of its own, with the provider's side of it. */
export async function startHookedHttp(env: Record<string, string> = {}) {
  const { ctx, app, close } = await startHttp(env);
  const http = new Recorder(app);
  return { ctx, http, provider: new ProviderHooks(http), close };
}
