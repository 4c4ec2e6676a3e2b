import { randomBytes } from "node:crypto";
import { Webhook } from "standardwebhooks";
import { describe, expect, it } from "vitest";
import { secretKey, sign, verify } from "../../bench/signature.js";

const whsec = `whsec_${randomBytes(32).toString("base64")}`;
const body = JSON.stringify({ type: "qr.updated", data: { qr: "data:image/png;base64,AAAA" } });

describe("bench Standard Webhooks signatures", () => {
  it("verifies what the standardwebhooks package (the daemon's signer) signs", () => {
    const at = new Date();
    const header = new Webhook(whsec).sign("msg_1", at, body);
    const ts = String(Math.floor(at.getTime() / 1000));
    expect(verify(secretKey(whsec), "msg_1", ts, body, header)).toBe(true);
    expect(verify(secretKey(whsec), "msg_2", ts, body, header)).toBe(false);
    expect(verify(secretKey(whsec), "msg_1", ts, `${body} `, header)).toBe(false);
  });

  it("signs what the standardwebhooks package verifies", () => {
    const ts = String(Math.floor(Date.now() / 1000));
    const headers = { "webhook-id": "msg_9", "webhook-timestamp": ts, "webhook-signature": sign(secretKey(whsec), "msg_9", ts, body) };
    expect(() => new Webhook(whsec).verify(body, headers)).not.toThrow();
  });

  it("accepts one good signature among several, and nothing else", () => {
    const key = secretKey(whsec);
    const good = sign(key, "m", "1", body);
    expect(verify(key, "m", "1", body, `v1,${randomBytes(32).toString("base64")} ${good}`)).toBe(true);
    expect(verify(key, "m", "1", body, good.replace("v1,", "v2,"))).toBe(false);
    expect(verify(key, "m", "1", body, "v1,")).toBe(false);
    expect(verify(key, "m", "1", body, "")).toBe(false);
    expect(() => secretKey("not-a-secret")).toThrow(/whsec_/);
  });
});
