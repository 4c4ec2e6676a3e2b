import { describe, expect, it } from "vitest";
import { newPrefix } from "../support/fleet.js";
import { ADMIN_TOKEN, startHttp } from "./harness.js";

/** Wrong admin tokens are counted per client address across every daemon and every way of logging in. */

const FORM = { "content-type": "application/x-www-form-urlencoded", "sec-fetch-site": "same-origin" };
const basic = (password: string) => `Basic ${Buffer.from(`admin:${password}`).toString("base64")}`;

describe("failed logins", () => {
  it("cost a 429 with Retry-After after the limit, whichever way they come, on every daemon, before any comparison", async () => {
    const env = { QRFLEET_REDIS_PREFIX: newPrefix(), QRFLEET_LOGIN_FAILURES: "3", QRFLEET_LOGIN_WINDOW_MS: "60000" };
    const one = await startHttp(env);
    const two = await startHttp(env);
    try {
      // Nothing presented is not a guess.
      for (let i = 0; i < 5; i++) expect((await one.app.inject({ method: "GET", url: "/api/instances" })).statusCode).toBe(401);

      expect((await one.app.inject({ method: "GET", url: "/api/instances", headers: { authorization: "Bearer wrong-token-1" } })).statusCode).toBe(401);
      expect((await one.app.inject({ method: "GET", url: "/admin/queues", headers: { authorization: basic("wrong-token-2") } })).statusCode).toBe(401);
      const form = await two.app.inject({ method: "POST", url: "/admin/login", headers: FORM, payload: "token=wrong-token-3" });
      expect(form.statusCode).toBe(401);

      for (const app of [one.app, two.app]) {
        const api = await app.inject({ method: "GET", url: "/api/instances", headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
        expect(api.statusCode).toBe(429);
        expect(api.json().error.code).toBe("too_many_failures");
        expect(Number(api.headers["retry-after"])).toBeGreaterThan(0);
        expect(Number(api.headers["retry-after"])).toBeLessThanOrEqual(60);
        expect((await app.inject({ method: "GET", url: "/admin/queues", headers: { authorization: basic(ADMIN_TOKEN) } })).statusCode).toBe(429);
        const page = await app.inject({ method: "POST", url: "/admin/login", headers: FORM, payload: `token=${ADMIN_TOKEN}` });
        expect(page.statusCode).toBe(429);
        expect(page.body).toContain("Too many wrong tokens from this address");
      }
    } finally {
      await one.close();
      await two.close();
    }
  });
});
