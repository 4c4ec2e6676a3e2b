import { describe, expect, it } from "vitest";
import { methodUrl, parseAddress, parseApiUrl, parseIdInstance, qrSocketUrl } from "../../src/greenapi/urls.js";

const TOKEN = "tok_SECRET_abcdef0123456789";
const addr = { apiUrl: "https://7103.api.greenapi.com", idInstance: "7103000001", token: TOKEN };

describe("parseApiUrl", () => {
  it("accepts http(s) origins and canonicalises them", () => {
    expect(parseApiUrl("https://7103.api.greenapi.com")).toBe("https://7103.api.greenapi.com");
    expect(parseApiUrl("https://7103.api.greenapi.com/")).toBe("https://7103.api.greenapi.com");
    expect(parseApiUrl(" HTTP://127.0.0.1:8080 ")).toBe("http://127.0.0.1:8080");
  });

  it.each([
    ["not a url", /is not a URL/],
    ["", /is not a URL/],
    ["ftp://x", /must start with https:\/\//],
    ["ws://x", /must start with https:\/\//],
    ["javascript:alert(1)", /must start with https:\/\//],
    ["https://host/path", /without a path, query or fragment/],
    ["https://host/?a=1", /without a path, query or fragment/],
    ["https://host/#x", /without a path, query or fragment/],
    ["https://user:pw@host", /user name or password/],
  ])("rejects %j with a clear message", (input, message) => {
    expect(() => parseApiUrl(input)).toThrow(message);
  });

  it("masks a token pasted inside a full method URL", () => {
    let err: unknown;
    try {
      parseApiUrl(`https://7103.api.greenapi.com/waInstance7103000001/qr/${TOKEN}`);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(Error);
    expect(String(err)).not.toContain(TOKEN);
    expect((err as Error).stack).not.toContain(TOKEN);
  });
});

describe("addresses", () => {
  it("builds method and socket URLs", () => {
    expect(methodUrl(addr, "getStateInstance")).toBe(`https://7103.api.greenapi.com/waInstance7103000001/getStateInstance/${TOKEN}`);
    expect(qrSocketUrl(addr)).toBe(`wss://7103.api.greenapi.com/waInstance7103000001/scanqrcode/${TOKEN}`);
    expect(qrSocketUrl({ ...addr, apiUrl: "http://127.0.0.1:9000/" })).toBe(
      `ws://127.0.0.1:9000/waInstance7103000001/scanqrcode/${TOKEN}`,
    );
  });

  it("requires a digits-only idInstance and a URL-safe token", () => {
    expect(parseIdInstance(" 7103000001 ")).toBe("7103000001");
    expect(() => parseIdInstance("71a")).toThrow(/digits only/);
    expect(() => parseIdInstance("")).toThrow(/digits only/);
    expect(() => parseAddress({ ...addr, idInstance: "../1" })).toThrow(/digits only/);
    expect(() => parseAddress({ ...addr, token: "a/b" })).toThrow(/apiTokenInstance/);
    expect(() => parseAddress({ ...addr, token: "" })).toThrow(/apiTokenInstance/);
    expect(() => methodUrl(addr, "qr/x")).toThrow(/letters only/);
  });

  it("never puts the token in an address error", () => {
    try {
      parseAddress({ ...addr, token: `${TOKEN} ` });
      expect.unreachable();
    } catch (err) {
      expect(String(err)).not.toContain(TOKEN);
    }
  });
});
