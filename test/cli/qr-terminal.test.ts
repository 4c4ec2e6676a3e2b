import QRCode from "qrcode";
import { describe, expect, it } from "vitest";
import { qrTextOf, terminalQr } from "../../src/cli/qr-terminal.js";
import { decodeTerminalQr } from "./terminal-art.js";

// The length of a real WhatsApp link QR ("2@…,…,…,…"): the densest code a terminal must show.
const WHATSAPP_LIKE = `2@${"A1b2C3d4E5".repeat(12)},${"x".repeat(44)}=,${"y".repeat(44)}=,${"z".repeat(24)}==`;

describe("drawing a provider QR in the terminal", () => {
  it("reads the text of a QR PNG, and nothing from an image that is not one", async () => {
    const png = await QRCode.toBuffer(WHATSAPP_LIKE, { type: "png", scale: 3 });
    expect(qrTextOf(png)).toBe(WHATSAPP_LIKE);
    expect(qrTextOf(Buffer.from("not a png"))).toBeNull();
  });

  it("draws a QR a scanner reads back, on a dark or a light terminal", async () => {
    for (const text of ["qrfleet-sim:1101000001:1:1:1b6632c2", WHATSAPP_LIKE]) {
      const art = await terminalQr(text);
      expect(decodeTerminalQr(art, "dark")).toBe(text);
      expect(decodeTerminalQr(art, "light")).toBe(text);
    }
  });
});
