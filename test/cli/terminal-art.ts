import { qrTextOfPixels } from "../../src/cli/qr-terminal.js";

/**
 * Reads a QR drawn by `qrcode`'s small terminal renderer back into pixels, as a phone camera
 * would see it on a terminal whose own background is `surround`, and decodes it.
 */
type Cell = "light" | "dark" | "none";

const SGR: Record<string, { fg?: Cell; bg?: Cell; reset?: true }> = {
  "0": { reset: true },
  "30": { fg: "dark" },
  "37": { fg: "light" },
  "40": { bg: "dark" },
  "47": { bg: "light" },
};

function rowsOf(art: string): Cell[][] {
  const rows: Cell[][] = [];
  for (const line of art.split("\n")) {
    let fg: Cell = "none";
    let bg: Cell = "none";
    const top: Cell[] = [];
    const bottom: Cell[] = [];
    for (const token of line.match(/\x1b\[\d+m|[^\x1b]/g) ?? []) {
      const code = /^\x1b\[(\d+)m$/.exec(token)?.[1];
      if (code !== undefined) {
        const s = SGR[code];
        if (s?.reset) fg = bg = "none";
        if (s?.fg) fg = s.fg;
        if (s?.bg) bg = s.bg;
        continue;
      }
      const [t, b] = token === "▀" ? [fg, bg] : token === "▄" ? [bg, fg] : token === "█" ? [fg, fg] : [bg, bg];
      top.push(t);
      bottom.push(b);
    }
    if (top.length > 0) rows.push(top, bottom);
  }
  return rows;
}

export function decodeTerminalQr(art: string, surround: "light" | "dark" = "dark"): string | null {
  const rows = rowsOf(art);
  const scale = 4;
  const margin = 8;
  const width = (Math.max(...rows.map((r) => r.length)) + 2 * margin) * scale;
  const height = (rows.length + 2 * margin) * scale;
  const pixels = new Uint8ClampedArray(width * height * 4);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const cell = rows[Math.floor(y / scale) - margin]?.[Math.floor(x / scale) - margin] ?? "none";
      const shade = (cell === "none" ? surround : cell) === "dark" ? 0 : 255;
      pixels.set([shade, shade, shade, 255], (y * width + x) * 4);
    }
  }
  return qrTextOfPixels(pixels, width, height);
}
