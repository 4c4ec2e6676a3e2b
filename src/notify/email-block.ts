/**
 * The pieces of an email's body, and their two renderings: every message is a list of blocks
 * rendered as text and as HTML, so the two parts always say the same.
 */
export type Block =
  | { p: string }
  | { h: string }
  | { cta: { url: string; label: string } }
  | { qr: { cid: string; width: number; height: number; validUntil: Date } }
  /** One line of a list: a name, what is known of it, and its link. */
  | { item: { title: string; detail: string; link: { url: string; label: string } | null } }
  | { small: string };

export const clock = (d: Date): string => `${d.toISOString().slice(11, 19)} UTC`;
export const dateTime = (d: Date): string => `${d.toISOString().slice(0, 16).replace("T", " ")} UTC`;
export const oneLine = (s: string): string => s.replace(/[\p{Cc}\s]+/gu, " ").trim();

const qrCaption = (validUntil: Date, where: string) =>
  `${where} is valid until ${clock(validUntil)} — open the live page for the current code.`;

export function renderText(blocks: Block[]): string {
  const main = blocks.filter((b) => !("small" in b));
  const notes = blocks.flatMap((b) => ("small" in b ? [b.small] : []));
  const parts = main.map((b) => {
    if ("p" in b) return b.p;
    if ("h" in b) return `== ${b.h} ==`;
    if ("cta" in b) return `${b.cta.label}:\n${b.cta.url}`;
    if ("qr" in b) return qrCaption(b.qr.validUntil, "The attached QR code");
    if ("item" in b) return [`* ${b.item.title}: ${b.item.detail}`, ...(b.item.link ? [`  ${b.item.link.url}`] : [])].join("\n");
    return "";
  });
  return [...parts, ["-- ", ...notes].join("\n")].join("\n\n") + "\n";
}

function esc(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;").replace(/'/g, "&#39;");
}

function blockHtml(b: Block): string {
  if ("p" in b) return `<p style="margin:0 0 16px">${esc(b.p)}</p>`;
  if ("h" in b) return `<h2 style="margin:24px 0 8px;font-size:18px">${esc(b.h)}</h2>`;
  if ("cta" in b) {
    return (
      `<p style="margin:24px 0"><a href="${esc(b.cta.url)}" style="display:inline-block;padding:16px 32px;` +
      `background:#128c7e;color:#ffffff;font-size:20px;font-weight:bold;text-decoration:none;border-radius:8px">` +
      `${esc(b.cta.label)}</a></p>` +
      `<p style="margin:0 0 16px;font-size:12px;color:#555">or copy this link: ${esc(b.cta.url)}</p>`
    );
  }
  if ("qr" in b) {
    return (
      `<p style="margin:0 0 4px"><img src="cid:${esc(b.qr.cid)}" width="${b.qr.width}" height="${b.qr.height}" ` +
      `alt="WhatsApp QR code" style="image-rendering:pixelated;border:1px solid #ddd"></p>` +
      `<p style="margin:0 0 16px;font-size:14px;color:#333">${esc(qrCaption(b.qr.validUntil, "This QR code"))}</p>`
    );
  }
  if ("item" in b) {
    const link = b.item.link
      ? ` <a href="${esc(b.item.link.url)}" style="display:inline-block;margin:4px 0;padding:4px 12px;border:1px solid #128c7e;` +
        `border-radius:6px;color:#128c7e;font-weight:bold;text-decoration:none;white-space:nowrap">${esc(b.item.link.label)}</a>`
      : "";
    return (
      `<p style="margin:0;padding:8px 0;border-bottom:1px solid #eee"><b>${esc(b.item.title)}</b>${link}` +
      `<br><span style="font-size:14px;color:#444">${esc(b.item.detail)}</span></p>`
    );
  }
  return `<p style="margin:24px 0 0;font-size:12px;color:#777">${esc(b.small)}</p>`;
}

export function renderHtml(subject: string, blocks: Block[]): string {
  return (
    `<!doctype html><html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">` +
    `<title>${esc(oneLine(subject))}</title></head>` +
    `<body style="font-family:Arial,Helvetica,sans-serif;font-size:16px;line-height:1.4;color:#111;max-width:600px">\n` +
    `${blocks.map(blockHtml).join("\n")}\n</body></html>\n`
  );
}
