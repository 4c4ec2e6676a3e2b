import Fastify from "fastify";
import { describe, expect, it } from "vitest";
import { registerLivePage } from "../../src/http/live.js";
import { addOperator, assign } from "../../src/fleet/operators/operators.js";
import { testFleet } from "../support/fleet.js";
import { liveInstance, liveLink, markLinked, pagePost, tamper, useLiveRoutes } from "./support.js";

const h = useLiveRoutes();

/** No worker runs here: the only provider calls are the pairing codes these tests ask for. */
const newInstance = () => liveInstance(h.ctx, h.sim);

describe("live page: phone-number pairing", () => {
  const pair = (link: string, body: unknown) => h.app.inject(pagePost(h.base, `/live/${link}/pair`, body));

  it("refuses a phone number that is not 7 to 15 digits", async () => {
    const { link } = await newInstance();
    for (const body of [{ phoneNumber: "123" }, { phoneNumber: "79001234567890123" }, { phoneNumber: "call me" }, {}, { phoneNumber: null }]) {
      const res = await pair(link, body);
      expect(res.statusCode, JSON.stringify(body)).toBe(400);
      expect(res.json().error.code).toBe("invalid_input");
    }
    expect((await pair(tamper(link), { phoneNumber: "79001234567" })).statusCode).toBe(403);
  });

  it("refuses a link signed with the fleet's key whose expiry lies years beyond the configured lifetime", async () => {
    const { inst } = await newInstance();
    const forever = liveLink(h.ctx, inst.id, 10 * 365 * 86_400_000);
    expect((await pair(forever, { phoneNumber: "79001234567" })).statusCode).toBe(403);
    expect((await h.app.inject({ method: "GET", url: `/live/${forever}` })).statusCode).toBe(403);
  });

  it("returns the provider's code without ever showing the instance token, once per interval", async () => {
    const { link, token } = await newInstance();
    const res = await pair(link, { phoneNumber: "+7 900 123-45-67" });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ code: expect.stringMatching(/^[A-Z]{4}-[A-Z]{4}$/) });
    expect(res.body).not.toContain(token);
    const again = await pair(link, { phoneNumber: "79001234567" });
    expect(again.statusCode).toBe(429);
    expect(again.json().error.code).toBe("rate_limited");
  });

  it("pairs only the phone an instance expects, without saying which one it is", async () => {
    const { inst, link } = await newInstance();
    await h.ctx.db.instance.update({ where: { id: inst.id }, data: { expectedPhone: "79990000001" } });
    const wrong = await pair(link, { phoneNumber: "79001234567" });
    expect(wrong.statusCode).toBe(409);
    expect(wrong.json().error.code).toBe("wrong_number");
    expect(wrong.body).not.toContain("79990000001");
    await h.ctx.queues.connection.del(`${h.ctx.queues.prefix}:live-pair:turn:${inst.id}`); // the interval has passed
    const right = await pair(link, { phoneNumber: "+7 999 000-00-01" });
    expect(right.statusCode, right.body).toBe(200);
  });

  it("answers nothing about the number more than once an interval: ten quick guesses after a wrong one are all 429", async () => {
    const { inst, link } = await newInstance();
    await h.ctx.db.instance.update({ where: { id: inst.id }, data: { expectedPhone: "79990000001" } });
    expect((await pair(link, { phoneNumber: "79001234560" })).json().error.code).toBe("wrong_number");
    for (let i = 1; i <= 10; i++) {
      const guess = await pair(link, { phoneNumber: i === 10 ? "79990000001" : `7900123456${i}` });
      expect(guess.statusCode, `guess ${i}`).toBe(429);
      expect(guess.json().error.code).toBe("rate_limited");
    }
  });

  it("holds the interval across daemons sharing Redis", async () => {
    const { link } = await newInstance();
    const other = testFleet({ QRFLEET_REDIS_PREFIX: h.ctx.config.QRFLEET_REDIS_PREFIX });
    const second = Fastify({ logger: false });
    try {
      await registerLivePage(second, other);
      expect((await pair(link, { phoneNumber: "79001234567" })).statusCode).toBe(200);
      const elsewhere = await second.inject(pagePost(h.base, `/live/${link}/pair`, { phoneNumber: "79001234567" }));
      expect(elsewhere.statusCode).toBe(429);
    } finally {
      await second.close();
      await other.close();
    }
  });

  it("says a stored token that cannot be decrypted needs an admin, instead of failing", async () => {
    const { inst, link } = await newInstance();
    await h.ctx.db.instance.update({ where: { id: inst.id }, data: { tokenCiphertext: Buffer.from("sealed under another key") } });
    const res = await pair(link, { phoneNumber: "79001234567" });
    expect(res.statusCode, res.body).toBe(502);
    expect(res.json().error).toEqual({ code: "invalid_token", message: expect.stringContaining("tell an admin") });
  });

  it("explains a refused token in words, without the token or the provider URL", async () => {
    const { link, token, idInstance } = await newInstance();
    h.sim.script(idInstance, { fate: "wrong_token" });
    const res = await pair(link, { phoneNumber: "79001234567" });
    expect(res.statusCode, res.body).toBe(502);
    expect(res.json().error).toEqual({ code: "invalid_token", message: expect.stringContaining("tell an admin") });
    expect(res.body).not.toContain(token);
    expect(res.body).not.toContain(h.sim.url);
  });

  it("refuses to pair once the instance is linked, without asking the provider", async () => {
    const { inst, link } = await newInstance();
    await markLinked(h.ctx, inst);
    const before = h.sim.stats().restRequests;
    const res = await pair(link, { phoneNumber: "79001234567" });
    expect(res.statusCode).toBe(409);
    expect(res.json().error).toEqual({ code: "already_linked", message: expect.stringContaining("ask an admin") });
    expect(h.sim.stats().restRequests).toBe(before);
  });

  it("refuses a pairing request from another site or a form, without asking the provider", async () => {
    const { link } = await newInstance();
    const before = h.sim.stats().restRequests;
    const foreign: Array<[Record<string, string>, number, string]> = [
      [{ "sec-fetch-site": "cross-site", origin: "https://evil.example" }, 403, "cross_site"],
      [{ "sec-fetch-site": "same-site", origin: "https://other.example.test" }, 403, "cross_site"],
      [{ "sec-fetch-site": "", origin: "https://evil.example" }, 403, "cross_site"],
      [{ "content-type": "text/plain" }, 415, "unsupported_media_type"],
    ];
    for (const [headers, status, code] of foreign) {
      const res = await h.app.inject(pagePost(h.base, `/live/${link}/pair`, { phoneNumber: "79001234567" }, headers));
      expect(res.statusCode, JSON.stringify(headers)).toBe(status);
      expect(res.json().error.code).toBe(code);
    }
    expect(h.sim.stats().restRequests).toBe(before);
    expect((await pair(link, { phoneNumber: "79001234567" })).statusCode).toBe(200);
  });

  it("records every request as a pairing.requested event with the number masked, for webhooks only; a flood of refusals once an interval", async () => {
    const { inst, link } = await newInstance();
    const { operator } = await addOperator(h.ctx, { name: `pair-${inst.id}`, email: "ops@example.test", webhook: "http://127.0.0.1:9/hook" });
    await assign(h.ctx, inst.id, operator.id);
    await h.ctx.db.instance.update({ where: { id: inst.id }, data: { expectedPhone: "79990000001" } });
    expect((await pair(link, { phoneNumber: "+7 900 123-45-67" })).statusCode).toBe(409);
    for (let i = 0; i < 20; i++) expect((await pair(link, { phoneNumber: "79001234567" })).statusCode).toBe(429);
    await h.ctx.queues.connection.del(`${h.ctx.queues.prefix}:live-pair:turn:${inst.id}`); // the interval has passed
    expect((await pair(link, { phoneNumber: "79990000001" })).statusCode).toBe(200);

    const events = await h.ctx.db.event.findMany({
      where: { instanceId: inst.id, type: "pairing.requested" }, orderBy: { createdAt: "asc" }, include: { deliveries: { include: { channel: true } } },
    });
    expect(events.map((e) => e.payload)).toEqual([
      { phone: "+7 900 ••• •• 67", result: "wrong_number" },
      { phone: "+7 900 ••• •• 67", result: "rate_limited" },
      { phone: "+7 999 ••• •• 01", result: "code" },
    ]);
    for (const e of events) expect(e.deliveries.map((d) => d.channel.kind)).toEqual(["webhook"]);
    expect(JSON.stringify(events)).not.toMatch(/1234567|0000001/);
  });
});
