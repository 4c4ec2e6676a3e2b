import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { createLogger, maskSecrets, registerSecret } from "../src/log.js";

const TOKEN = "d7a1c3e5f7091b2d4f6a8c0e2a4c6e8f0a2c4e6a8c0e2a4b6c8";

function capture() {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      chunks.push(chunk.toString());
      cb();
    },
  });
  return { logger: createLogger({ level: "debug", destination: stream }), text: () => chunks.join("") };
}

describe("secret masking", () => {
  it("masks the token segment of every GREEN-API URL", () => {
    for (const method of ["scanqrcode", "getStateInstance", "qr", "logout", "getAuthorizationCode"]) {
      const url = `wss://7103.api.greenapi.com/waInstance7103000001/${method}/${TOKEN}`;
      const masked = maskSecrets(`failed: ${url} (401)`);
      expect(masked).not.toContain(TOKEN);
      expect(masked).toContain(`/waInstance7103000001/${method}/***`);
    }
    expect(maskSecrets(`smtp://user:${TOKEN}@mail:587`)).toBe("smtp://user:***@mail:587");
    expect(maskSecrets(`https://x/y?token=${TOKEN}&a=1`)).toBe("https://x/y?token=***&a=1");
  });

  it("keeps tokens out of log lines: URLs in messages, fields, errors and nested objects", () => {
    const { logger, text } = capture();
    const url = `https://7103.api.greenapi.com/waInstance7103000001/qr/${TOKEN}`;
    logger.info(`calling ${url}`);
    logger.info({ url, token: TOKEN, instance: { apiTokenInstance: TOKEN } }, "fields");
    logger.error({ err: new Error(`upgrade failed for ${url}`) }, "error");
    logger.flush();
    expect(text()).toContain("waInstance7103000001/qr/***");
    expect(text()).not.toContain(TOKEN);
  });

  it("masks explicitly registered secrets wherever they appear", () => {
    const admin = "admin-token-never-in-logs-42";
    registerSecret(admin);
    const { logger, text } = capture();
    logger.warn(`bad header Bearer ${admin}`);
    logger.flush();
    expect(text()).not.toContain(admin);
    expect(maskSecrets(`x ${admin} y`)).toBe("x *** y");
  });
});
