import type { Server, ServerResponse } from "node:http";

/** The little HTTP the demo's mail catcher and webhook sink share: plain pages on 127.0.0.1. */

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export function page(title: string, body: string): string {
  return (
    `<!doctype html><html><head><meta charset="utf-8"><title>${escapeHtml(title)}</title>` +
    `<style>body{font:14px system-ui,sans-serif;margin:2em}table{border-collapse:collapse}` +
    `td,th{border-bottom:1px solid #ddd;padding:4px 10px;text-align:left;vertical-align:top}` +
    `.ok{color:#070}.bad{color:#b00}code{background:#f4f4f4;padding:0 3px}</style></head><body>${body}</body></html>`
  );
}

export function send(res: ServerResponse, status: number, type: string, body: string | Buffer): void {
  if (res.headersSent) return void res.end();
  const textual = type.startsWith("text/") || type === "application/json";
  res.writeHead(status, { "content-type": textual ? `${type}; charset=utf-8` : type, "cache-control": "no-store" });
  res.end(body);
}

/** Listens on a free port of 127.0.0.1 (the demo's peers are local only). */
export function listen(server: Server): Promise<void> {
  // Bounded like every other server of ours: a stuck client cannot hold a request forever.
  server.requestTimeout = 15_000;
  server.headersTimeout = 10_000;
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  });
}
