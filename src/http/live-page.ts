import type { SessionStatus } from "../db.js";
import type { LiveView } from "../fleet/triggers/live.js";
import { maskSecrets } from "../log.js";
import { LIVE_SCRIPT } from "./live-script.js";

/**
 * The HTML of the live QR page and its error pages. Self-contained (inline CSS and JS under a
 * per-response CSP nonce, no external assets) and free of the link token: the script derives
 * every URL from location.pathname, so a saved or shared copy of the page carries no credential.
 * No element fetches or prefetches anything but the page's own assets: following every URL the
 * page names starts nothing.
 */

export interface LivePageModel {
  nonce: string;
  label: string;
  idInstance: string;
  linkExpiresAt: Date;
  view: LiveView;
}

export interface ErrorPageModel {
  nonce: string;
  status: number;
  title: string;
  message: string;
}

const TEXT: Partial<Record<SessionStatus, string>> = {
  already_logged: "Already linked ✓ — nothing to do",
  timed_out: "Expired — nobody scanned in time",
};

/** What the page says when a session ends; `error` is stored masked, masked again for the page. */
export function outcomeText(s: { status: SessionStatus; phone: string | null; error: string | null }): string {
  const phone = s.phone ? ` to ${s.phone}` : "";
  const detail = maskSecrets(s.error ?? "no detail recorded").slice(0, 300);
  switch (s.status) {
    case "authorized":
      return `Linked ✓${phone}`;
    case "wrong_number":
      return `Wrong number — linked${phone}, which is not the number this instance expects`;
    case "failed":
      return `Failed: ${detail}`;
    case "cancelled":
      return `Cancelled: ${detail}`;
    default:
      return TEXT[s.status] ?? s.status;
  }
}

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** JSON inside a <script> element: `<` escaped so no value can close the element. */
function scriptJson(value: unknown): string {
  return JSON.stringify(value).replace(/</g, "\\u003c");
}

const STYLE = `
:root { color-scheme: light dark; font-family: system-ui, -apple-system, "Segoe UI", sans-serif; }
body { margin: 0; padding: 1.5rem 1rem 3rem; display: flex; justify-content: center; background: Canvas; color: CanvasText; }
main { max-width: 34rem; width: 100%; text-align: center; }
h1 { font-size: 1.6rem; margin: 0 0 .2rem; overflow-wrap: anywhere; }
.sub { margin: 0 0 1.2rem; opacity: .7; }
.qr { width: 320px; height: 320px; margin: 0 auto; display: flex; align-items: center; justify-content: center;
  background: #fff; color: #333; border-radius: 12px; border: 1px solid #ccc; }
.qr img { width: 320px; height: 320px; image-rendering: pixelated; image-rendering: crisp-edges; }
.countdown { font-size: 1.8rem; font-variant-numeric: tabular-nums; margin: .8rem 0 .2rem; }
.attempt { margin: 0 0 1rem; opacity: .75; }
.outcome { font-size: 1.6rem; font-weight: 600; margin: 1.2rem 0; padding: 1rem; border-radius: 10px; }
.outcome.good { background: #d9f7df; color: #0b5a1c; }
.outcome.bad { background: #fde2e1; color: #7a1111; }
.how { text-align: left; line-height: 1.5; }
details { text-align: left; margin-top: 1.5rem; border-top: 1px solid #8884; padding-top: 1rem; }
summary { cursor: pointer; font-weight: 600; }
form { display: flex; gap: .5rem; margin: .8rem 0; flex-wrap: wrap; }
input { flex: 1; min-width: 12rem; font-size: 1.1rem; padding: .5rem; }
button { font-size: 1.1rem; padding: .5rem 1rem; }
.code { font-size: 2.6rem; letter-spacing: .2rem; font-weight: 700; font-family: ui-monospace, monospace; text-align: center; margin: .6rem 0; }
.error { color: #b3261e; }
.start { margin: 1.5rem 0; }
.start button { font-size: 1.3rem; padding: .8rem 1.6rem; }
`;

/** The document start every page shares; the referrer is withheld because the URL is the credential. */
export function pageHead(title: string, nonce: string, style = STYLE): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<link rel="icon" href="data:,">
<title>${escapeHtml(title)}</title>
<style nonce="${nonce}">${style}</style>
</head>`;
}

export function renderLivePage(m: LivePageModel): string {
  switch (m.view.show) {
    case "linked":
      return renderStatusPage(m, { good: true, headline: `Linked ✓${m.view.phone ? ` to ${m.view.phone}` : ""}`, lines: LINKED_LINES });
    case "needs_admin":
      return renderStatusPage(m, { good: false, headline: "This instance needs an admin", lines: NEEDS_ADMIN_LINES });
    case "session":
      return renderFollowPage(m, m.view.session, m.view.pairing, null);
    case "start":
      return renderFollowPage(m, null, true, m.view.last);
  }
}

/**
 * A linked instance offers nothing to start or pair: a code scanned now would only end
 * `already_logged`, and a forwarded link must not let another phone in. Whoever doubts it is told
 * who can act, and that the fleet's own checks start a session when the phone is logged out.
 */
const LINKED_LINES = [
  "Nothing to do: this WhatsApp instance is linked to a phone, so this page shows no code.",
  "If WhatsApp on the phone does not list it under Linked devices, ask an admin. The fleet checks every instance " +
    "regularly and, when it finds one logged out, starts a new session and sends a fresh link.",
];
const NEEDS_ADMIN_LINES = [
  "The provider refused this instance's stored credentials, so no QR code can be shown.",
  "Tell an admin; once the instance's token is fixed, the next message brings a fresh link.",
];

function renderStatusPage(m: LivePageModel, s: { good: boolean; headline: string; lines: string[] }): string {
  return `${pageHead(`WhatsApp — ${m.label}`, m.nonce)}
<body>
<main>
  <h1 id="label">${escapeHtml(m.label)}</h1>
  <p class="sub">WhatsApp instance ${escapeHtml(m.idInstance)}</p>
  <p class="outcome ${s.good ? "good" : "bad"}" id="outcome" role="status">${escapeHtml(s.headline)}</p>
  ${s.lines.map((line) => `<p>${escapeHtml(line)}</p>`).join("\n  ")}
</main>
</body>
</html>`;
}

type Followed = Extract<LiveView, { show: "session" }>["session"];
type LastSession = Extract<LiveView, { show: "start" }>["last"];

/** The QR page: it follows `session`, or (with none) offers the Start button, saying how the last session ended. */
function renderFollowPage(m: LivePageModel, session: Followed | null, pairing: boolean, last: LastSession): string {
  const boot = { sessionId: session?.id ?? null, linkExpiresAt: m.linkExpiresAt.toISOString() };
  const lastText = last ? `The last session ended: ${outcomeText(last)}.` : "No session is running for this instance.";
  return `${pageHead(`Link WhatsApp — ${m.label}`, m.nonce)}
<body>
<main>
  <h1 id="label">${escapeHtml(m.label)}</h1>
  <p class="sub">WhatsApp instance ${escapeHtml(m.idInstance)}</p>
  <noscript><p class="outcome bad">This page needs JavaScript to show the code as it changes.</p></noscript>
  <section id="follow"${session ? "" : " hidden"} aria-label="QR code">
  <div class="qr" id="qr-box"><img id="qr" alt="QR code to link WhatsApp" width="320" height="320" hidden><span id="qr-wait">Waiting for a QR code…</span></div>
  <p class="countdown" id="countdown">Starting…</p>
  <p class="attempt" id="attempt">${session ? `Attempt ${session.attempt} of ${session.maxAttempts}` : ""}</p>
  <p class="outcome" id="outcome" role="status" hidden></p>
  <ol class="how" id="how">
    <li>Open WhatsApp on the phone that should own this number.</li>
    <li>Go to Settings → Linked devices → Link a device.</li>
    <li>Point the camera at the code above. It changes every ~20 seconds; this page follows it.</li>
  </ol>
  ${pairing ? PAIRING : ""}
  </section>
  <section class="start" id="start-box"${session ? " hidden" : ""}>
    <p id="start-text">${escapeHtml(lastText)} Have the phone at hand, then press the button: a QR code appears here and changes every ~20 seconds.</p>
    <button id="start" type="button">Show a QR code</button>
    <p class="error" id="start-error" role="alert" hidden></p>
  </section>
</main>
<script type="application/json" id="boot">${scriptJson(boot)}</script>
<script nonce="${m.nonce}">${LIVE_SCRIPT}</script>
</body>
</html>`;
}

const PAIRING = `<details id="pairing">
    <summary>Can't scan? Link with phone number</summary>
    <form id="pair-form">
      <input id="pair-phone" name="phoneNumber" type="tel" inputmode="numeric" autocomplete="tel"
        placeholder="International number, e.g. 79001234567" aria-label="Phone number in international form" required>
      <button type="submit">Get code</button>
    </form>
    <p class="error" id="pair-error" role="alert" hidden></p>
    <div id="pair-result" hidden>
      <p class="code" id="pair-code"></p>
      <p>On the phone: WhatsApp → Settings → Linked devices → Link a device → <b>Link with phone number instead</b>, then type this code.</p>
    </div>
  </details>`;

export function renderErrorPage(m: ErrorPageModel): string {
  return `${pageHead(m.title, m.nonce)}
<body>
<main>
  <h1>${escapeHtml(m.title)}</h1>
  <p class="sub">HTTP ${m.status}</p>
  <p>${escapeHtml(m.message)}</p>
</main>
</body>
</html>`;
}
