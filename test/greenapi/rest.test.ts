import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  GreenApiError,
  InvalidTokenError,
  ProviderProtocolError,
  ProviderRateLimitedError,
  ProviderUnavailableError,
  UnknownInstanceError,
} from "../../src/greenapi/errors.js";
import { createGreenApiClient, type GreenApiClient } from "../../src/greenapi/rest.js";
import { freePort, json, startProvider, type StandInProvider } from "./provider.js";
import { qrPng } from "./fixtures.js";

const TOKEN = "tok_SECRET_abcdef0123456789";
let provider: StandInProvider;
let client: GreenApiClient;
let png: Buffer;
const seenErrors: unknown[] = [];

beforeAll(async () => {
  provider = await startProvider();
  png = await qrPng("rest-test");
});
afterAll(async () => {
  await provider.close();
  // Every error any test saw: none may carry the token, in any of its renderings.
  expect(seenErrors.length).toBeGreaterThan(10);
  for (const err of seenErrors) {
    const e = err as Error;
    for (const text of [String(e), e.message, e.stack ?? "", JSON.stringify(e)]) expect(text).not.toContain(TOKEN);
  }
});
beforeEach(() => {
  provider.requests.length = 0;
  client = createGreenApiClient({ apiUrl: provider.apiUrl, idInstance: "7103000001", token: TOKEN }, { timeoutMs: 300, rateLimitRetries: 0 });
});

async function failure(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    seenErrors.push(err);
    return err as Error;
  }
  throw new Error("expected a rejection");
}

describe("getStateInstance", () => {
  it("GETs the method URL and returns a known state", async () => {
    provider.rest = (_req, res) => json(res, 200, { stateInstance: "authorized" });
    expect(await client.getStateInstance()).toEqual({ state: "authorized", raw: "authorized" });
    expect(provider.requests).toEqual([
      expect.objectContaining({ method: "GET", url: `/waInstance7103000001/getStateInstance/${TOKEN}` }),
    ]);
  });

  it("maps states it does not know to unknown, keeping the provider's word", async () => {
    provider.rest = (_req, res) => json(res, 200, { stateInstance: "pendingPassword" });
    expect(await client.getStateInstance()).toEqual({ state: "unknown", raw: "pendingPassword" });
  });

  it.each([
    [401, InvalidTokenError, "invalid_token", false],
    [403, InvalidTokenError, "invalid_token", false],
    [404, UnknownInstanceError, "unknown_instance", false],
    [500, ProviderUnavailableError, "provider_unavailable", true],
    [503, ProviderUnavailableError, "provider_unavailable", true],
    // Waited out and tried again first (rest-pace.test.ts); with no retries left, a transient error of its own.
    [429, ProviderRateLimitedError, "provider_rate_limited", true],
    [400, ProviderProtocolError, "provider_protocol", true],
  ])("HTTP %i → %o", async (status, type, code, transient) => {
    provider.rest = (_req, res) => json(res, status, { error: `bad ${TOKEN}` });
    const err = await failure(client.getStateInstance());
    expect(err).toBeInstanceOf(type);
    expect(err).toBeInstanceOf(GreenApiError);
    expect(err).toMatchObject({ code, transient, status });
    expect(err.message).toContain(`HTTP ${status}`);
    expect(err.message).toContain("/waInstance7103000001/getStateInstance/***");
  });

  it("times out a slow answer as provider_unavailable", async () => {
    provider.rest = (_req, res) => setTimeout(() => json(res, 200, { stateInstance: "authorized" }), 2000);
    const started = Date.now();
    const err = await failure(client.getStateInstance());
    expect(err).toBeInstanceOf(ProviderUnavailableError);
    expect(err.message).toMatch(/timed out after 300 ms/);
    expect(Date.now() - started).toBeLessThan(1500);
  });

  it("times out a body that stalls after the headers", async () => {
    provider.rest = (_req, res) => {
      res.writeHead(200, { "content-type": "application/json" });
      res.write('{"stateInstance":');
    };
    const err = await failure(client.getStateInstance());
    expect(err).toBeInstanceOf(ProviderUnavailableError);
  });

  it("hands back the caller's abort reason rather than a provider error", async () => {
    provider.rest = (_req, res) => setTimeout(() => json(res, 200, { stateInstance: "authorized" }), 2000);
    const ac = new AbortController();
    const reason = new Error("stopping");
    setTimeout(() => ac.abort(reason), 20);
    expect(await failure(client.getStateInstance(ac.signal))).toBe(reason);
  });

  it("reports a refused connection as provider_unavailable with the errno code", async () => {
    const port = await freePort();
    const c = createGreenApiClient({ apiUrl: `http://127.0.0.1:${port}`, idInstance: "1", token: TOKEN }, { timeoutMs: 500 });
    const err = await failure(c.getStateInstance());
    expect(err).toBeInstanceOf(ProviderUnavailableError);
    expect(err.message).toContain("ECONNREFUSED");
  });

  it.each([
    ["a body that is not JSON", "<html>oops</html>", /not JSON/],
    ["a body of the wrong shape", { state: "authorized" }, /unexpected body \(stateInstance/],
    ["a wrongly typed field", { stateInstance: 5 }, /unexpected body/],
  ])("refuses %s as provider_protocol", async (_name, body, message) => {
    provider.rest = (_req, res) => json(res, 200, body);
    const err = await failure(client.getStateInstance());
    expect(err).toBeInstanceOf(ProviderProtocolError);
    expect(err.message).toMatch(message);
  });

  it("refuses a huge body, declared or streamed", async () => {
    const body = JSON.stringify({ stateInstance: "x".repeat(2 * 1024 * 1024) });
    provider.rest = (_req, res) => res.writeHead(200, { "content-length": String(body.length) }).end(body);
    const declared = await failure(client.getStateInstance());
    expect(declared).toBeInstanceOf(ProviderProtocolError);
    expect(declared.message).toContain(`body of ${body.length} bytes`);
    provider.rest = (_req, res) => {
      res.writeHead(200, { "content-type": "application/json" });
      res.write(body.slice(0, 1000));
      res.end(body.slice(1000));
    };
    const c = createGreenApiClient({ apiUrl: provider.apiUrl, idInstance: "1", token: TOKEN }, { timeoutMs: 5000 });
    expect(await failure(c.getStateInstance())).toBeInstanceOf(ProviderProtocolError);
  });
});

describe("qr", () => {
  it("returns the PNG of a qrCode answer", async () => {
    provider.rest = (_req, res) => json(res, 200, { type: "qrCode", message: png.toString("base64") });
    const qr = await client.qr();
    expect(qr.type === "qrCode" && qr.png.equals(png)).toBe(true);
    expect(provider.requests[0]?.url).toBe(`/waInstance7103000001/qr/${TOKEN}`);
  });

  it("returns alreadyLogged and error answers", async () => {
    provider.rest = (_req, res) => json(res, 200, { type: "alreadyLogged", message: "instance account already authorized" });
    expect(await client.qr()).toEqual({ type: "alreadyLogged" });
    provider.rest = (_req, res) => json(res, 200, { type: "error", message: "instance is starting" });
    expect(await client.qr()).toEqual({ type: "error", message: "instance is starting" });
  });

  it("refuses a qrCode that is not a PNG and a type it does not know", async () => {
    provider.rest = (_req, res) => json(res, 200, { type: "qrCode", message: "bm90IGEgcG5n" });
    expect(await failure(client.qr())).toBeInstanceOf(ProviderProtocolError);
    provider.rest = (_req, res) => json(res, 200, { type: "passkeyRequired", message: "" });
    const err = await failure(client.qr());
    expect(err).toBeInstanceOf(ProviderProtocolError);
    expect(err.message).toContain('"passkeyRequired"');
  });
});

describe("logout, reboot, getAuthorizationCode", () => {
  it("logout and reboot return the provider's flag", async () => {
    provider.rest = (req, res) => json(res, 200, req.url?.includes("/logout/") ? { isLogout: true } : { isReboot: false });
    expect(await client.logout()).toBe(true);
    expect(await client.reboot()).toBe(false);
    expect(provider.requests.map((r) => `${r.method} ${r.url}`)).toEqual([
      `GET /waInstance7103000001/logout/${TOKEN}`,
      `GET /waInstance7103000001/reboot/${TOKEN}`,
    ]);
    provider.rest = (_req, res) => json(res, 200, { isLogout: "yes" });
    expect(await failure(client.logout())).toBeInstanceOf(ProviderProtocolError);
  });

  it("getAuthorizationCode POSTs the phone as a number and returns the code", async () => {
    provider.rest = (_req, res) => json(res, 200, { status: true, code: "ABCD-1234" });
    expect(await client.getAuthorizationCode("+7 900 123-45-67")).toEqual({ status: true, code: "ABCD-1234" });
    const req = provider.requests[0]!;
    expect(req.method).toBe("POST");
    expect(req.url).toBe(`/waInstance7103000001/getAuthorizationCode/${TOKEN}`);
    expect(req.contentType).toBe("application/json");
    expect(JSON.parse(req.body)).toEqual({ phoneNumber: 79001234567 });
  });

  it("getAuthorizationCode tolerates a missing code when status is false", async () => {
    provider.rest = (_req, res) => json(res, 200, { status: false });
    expect(await client.getAuthorizationCode("79001234567")).toEqual({ status: false, code: "" });
  });

  it("getAuthorizationCode refuses a phone that is not digits before calling", async () => {
    await expect(client.getAuthorizationCode("call me")).rejects.toThrow(RangeError);
    await expect(client.getAuthorizationCode("1".repeat(20))).rejects.toThrow(/5-15 digits/);
    expect(provider.requests).toHaveLength(0);
  });
});

describe("getWaSettings", () => {
  it("returns the linked phone and the state", async () => {
    provider.rest = (_req, res) => json(res, 200, { avatar: "", phone: "79001234567", stateInstance: "authorized", deviceId: "d1" });
    expect(await client.getWaSettings()).toEqual({ phone: "79001234567", state: "authorized" });
    expect(provider.requests[0]!.url).toBe(`/waInstance7103000001/getWaSettings/${TOKEN}`);
  });

  it("reads a phone that is missing, empty or not a number as none", async () => {
    for (const phone of [undefined, "", "not a phone", { nested: 1 }, "1".repeat(40)]) {
      provider.rest = (_req, res) => json(res, 200, { phone, stateInstance: "notAuthorized" });
      expect(await client.getWaSettings()).toEqual({ phone: null, state: "notAuthorized" });
    }
    provider.rest = (_req, res) => json(res, 200, { phone: 79001234567, stateInstance: "authorized" });
    expect((await client.getWaSettings()).phone).toBe("79001234567");
  });

  it("refuses an answer without a state", async () => {
    provider.rest = (_req, res) => json(res, 200, { phone: "79001234567" });
    expect(await failure(client.getWaSettings())).toBeInstanceOf(ProviderProtocolError);
  });
});

describe("construction", () => {
  it("refuses an unusable address up front", () => {
    expect(() => createGreenApiClient({ apiUrl: "ftp://x", idInstance: "1", token: TOKEN }, { timeoutMs: 100 })).toThrow(/https:\/\//);
    expect(() => createGreenApiClient({ apiUrl: "https://x", idInstance: "abc", token: TOKEN }, { timeoutMs: 100 })).toThrow(/digits/);
  });
});
