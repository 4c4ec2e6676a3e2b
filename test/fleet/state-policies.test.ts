import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../../src/config.js";
import { DEFAULT_STATE_POLICIES } from "../../src/state-policies.js";

const env = (policies: string) => ({ QRFLEET_SECRET_KEY: Buffer.alloc(32, 7).toString("base64"), QRFLEET_ADMIN_TOKEN: "x".repeat(16), QRFLEET_STATE_POLICIES: policies });

describe("QRFLEET_STATE_POLICIES", () => {
  it("gives every state the provider's advice by default, and takes overrides state by state", () => {
    expect(loadConfig(env("")).QRFLEET_STATE_POLICIES).toEqual({
      notAuthorized: "start_session", authorized: "end_session", blocked: "alert", yellowCard: "alert",
      starting: "reboot", sleepMode: "warn_unlink", unknown: "record",
    });
    expect(loadConfig(env(" yellowCard=reboot , unknown=alert")).QRFLEET_STATE_POLICIES).toEqual({
      ...DEFAULT_STATE_POLICIES, yellowCard: "reboot", unknown: "alert",
    });
  });

  it("refuses an unknown state or policy, and end_session for anything but authorized, with a sentence", () => {
    for (const [value, says] of [
      ["pendingPassword=alert", /is not state=policy with a state among notAuthorized/],
      ["blocked=shout", /the policy of blocked must be one of start_session, end_session/],
      ["blocked", /is not state=policy/],
      ["starting=end_session", /end_session is only for authorized, not starting/],
    ] as const) {
      expect(() => loadConfig(env(value))).toThrow(ConfigError);
      expect(() => loadConfig(env(value))).toThrow(says);
    }
  });
});
