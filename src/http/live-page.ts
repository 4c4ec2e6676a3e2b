import type { SessionStatus } from "../db.js";
import { maskSecrets } from "../log.js";

/**
 * The HTML of the live QR page and its error pages. Self-contained (inline CSS and JS under a
 * per-response CSP nonce, no external assets) and free of the link token: the script derives
 * every URL from location.pathname, so a saved or shared copy of the page carries no credential.
 */

export interface LivePageModel {
  nonce: string;
  label: string;
  idInstance: string;
  sessionId: string;
  attempt: number;
  maxAttempts: number;
  linkExpiresAt: Date;
}

export interface ErrorPageModel {
  nonce: string;
  status: number;
  title: string;
  message: string;
}

const TEXT: Partial<Record<SessionStatus, string>> = {
  already_logged: "Already linked ✓ — nothing to do",
  timed_out: "Expired — reload to get a new code",
};

/** What the page says when a session ends; `error` is stored masked, masked again for the page. */
export function outcomeText(s: { status: SessionStatus; phone: string | null; error: string | null }): string {
  const phone = s.phone ? ` to +${s.phone}` : "";
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
`;

/** The document start both pages share; the referrer is withheld because the URL is the credential. */
function pageHead(title: string, nonce: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<link rel="icon" href="data:,">
<title>${escapeHtml(title)}</title>
<style nonce="${nonce}">${STYLE}</style>
</head>`;
}

export function renderLivePage(m: LivePageModel): string {
  const boot = { sessionId: m.sessionId, attempt: m.attempt, maxAttempts: m.maxAttempts, linkExpiresAt: m.linkExpiresAt.toISOString() };
  return `${pageHead(`Link WhatsApp — ${m.label}`, m.nonce)}
<body>
<main>
  <h1 id="label">${escapeHtml(m.label)}</h1>
  <p class="sub">WhatsApp instance ${escapeHtml(m.idInstance)}</p>
  <div class="qr" id="qr-box"><img id="qr" alt="QR code to link WhatsApp" width="320" height="320" hidden><span id="qr-wait">Waiting for a QR code…</span></div>
  <noscript><p class="outcome bad">This page needs JavaScript to show the code as it changes.</p></noscript>
  <p class="countdown" id="countdown">Starting…</p>
  <p class="attempt" id="attempt">Attempt ${m.attempt} of ${m.maxAttempts}</p>
  <p class="outcome" id="outcome" role="status" hidden></p>
  <ol class="how" id="how">
    <li>Open WhatsApp on the phone that should own this number.</li>
    <li>Go to Settings → Linked devices → Link a device.</li>
    <li>Point the camera at the code above. It changes every ~20 seconds; this page follows it.</li>
  </ol>
  <details id="pairing">
    <summary>Can't scan? Link with phone number</summary>
    <form id="pair-form">
      <input id="pair-phone" name="phoneNumber" type="tel" inputmode="numeric" autocomplete="tel"
        placeholder="International number, e.g. 79001234567" required>
      <button type="submit">Get code</button>
    </form>
    <p class="error" id="pair-error" hidden></p>
    <div id="pair-result" hidden>
      <p class="code" id="pair-code"></p>
      <p>On the phone: WhatsApp → Settings → Linked devices → Link a device → <b>Link with phone number instead</b>, then type this code.</p>
    </div>
  </details>
</main>
<script type="application/json" id="boot">${scriptJson(boot)}</script>
<script nonce="${m.nonce}">${SCRIPT}</script>
</body>
</html>`;
}

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

// Plain ES2017 for any phone browser. The server sends state; the page only renders it.
const SCRIPT = `
(function () {
  "use strict";
  var base = location.pathname.replace(/\\/+$/, "");
  var boot = JSON.parse(document.getElementById("boot").textContent);
  var $ = function (id) { return document.getElementById(id); };
  var skewMs = 0, expiresAt = null, nextAt = null, status = "queued", ended = false, shown = 0, wanted = 0, objectUrl = null;

  function fmt(ms) {
    var s = Math.max(0, Math.ceil(ms / 1000));
    return Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0");
  }
  function now() { return Date.now() + skewMs; }
  function tick() {
    if (ended) return;
    var text = "Starting…";
    if (status === "running" && expiresAt) {
      text = expiresAt > now() ? "Scan within " + fmt(expiresAt - now()) : "Waiting for the provider…";
    } else if (status === "queued" && nextAt) {
      text = "Next code in " + fmt(nextAt - now());
    }
    $("countdown").textContent = text;
  }
  function clearQr(message) {
    wanted++;
    $("qr").hidden = true;
    $("qr-wait").hidden = false;
    $("qr-wait").textContent = message;
  }
  function showQr(d) {
    var ticket = ++wanted;
    fetch(d.url, { cache: "no-store" }).then(function (r) {
      if (!r.ok) throw new Error("HTTP " + r.status);
      return r.blob();
    }).then(function (blob) {
      if (ticket !== wanted || ended) return;
      var img = $("qr");
      if (objectUrl) URL.revokeObjectURL(objectUrl);
      objectUrl = URL.createObjectURL(blob);
      img.src = objectUrl;
      img.dataset.session = d.sessionId;
      img.dataset.sequence = String(d.sequence);
      img.hidden = false;
      $("qr-wait").hidden = true;
      shown = d.sequence;
    }).catch(function () { /* the next qr event brings a newer image */ });
  }
  function onState(d) {
    skewMs = d.now - Date.now();
    status = d.status;
    $("attempt").textContent = "Attempt " + d.attempt + " of " + d.maxAttempts;
  }
  function end(text, good) {
    ended = true;
    es.close();
    clearQr(good ? "✓" : "—");
    $("countdown").textContent = "";
    var o = $("outcome");
    o.textContent = text;
    o.className = "outcome " + (good ? "good" : "bad");
    o.hidden = false;
    $("how").hidden = true;
  }

  var es = new EventSource(base + "/events?session=" + encodeURIComponent(boot.sessionId));
  es.addEventListener("status", function (e) {
    var d = JSON.parse(e.data);
    onState(d);
    nextAt = d.nextAttemptAt ? Date.parse(d.nextAttemptAt) : null;
    expiresAt = d.expiresAt ? Date.parse(d.expiresAt) : null;
    if (d.status !== "running") clearQr(d.attempt > 1 ? "Attempt " + (d.attempt - 1) + " expired unscanned; a new code is coming" : "Waiting for a QR code…");
    tick();
  });
  es.addEventListener("qr", function (e) {
    var d = JSON.parse(e.data);
    skewMs = d.now - Date.now();
    expiresAt = Date.parse(d.expiresAt);
    if (d.sequence !== shown) showQr(d);
    tick();
  });
  es.addEventListener("end", function (e) {
    var d = JSON.parse(e.data);
    end(d.message, d.status === "authorized" || d.status === "already_logged");
  });
  es.onerror = function () {
    if (!ended && es.readyState === EventSource.CLOSED) end("This link no longer works — ask for a new one, or reload the page", false);
  };
  setInterval(tick, 250);

  $("pair-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var err = $("pair-error");
    err.hidden = true;
    fetch(base + "/pair", {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/json" },
      body: JSON.stringify({ phoneNumber: $("pair-phone").value })
    }).then(function (r) {
      return r.json().then(function (body) { return { ok: r.ok, body: body }; });
    }).then(function (res) {
      if (!res.ok) throw new Error(res.body && res.body.error ? res.body.error.message : "request failed");
      $("pair-code").textContent = res.body.code;
      $("pair-result").hidden = false;
    }).catch(function (e) {
      err.textContent = e.message || "Could not get a code; try again";
      err.hidden = false;
    });
  });
})();
`;
