/**
 * The live page's script, sent inline under the response's CSP nonce. It derives every URL from
 * location.pathname, so the page carries no token of its own. Loading the page only reads: a
 * session starts when the person presses Start (a POST), never because the page was opened.
 */

// Plain ES2017 for any phone browser. The server sends state; the page only renders it.
export const LIVE_SCRIPT = `
(function () {
  "use strict";
  var base = location.pathname.replace(/\\/+$/, "");
  var boot = JSON.parse(document.getElementById("boot").textContent);
  var $ = function (id) { return document.getElementById(id); };
  var skewMs = 0, expiresAt = null, nextAt = null, status = "queued", ended = true, shown = 0, wanted = 0, objectUrl = null, es = null;

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
  function offerStart(label, text) {
    $("start").textContent = label;
    $("start").disabled = false;
    $("start-text").textContent = text;
    $("start-box").hidden = false;
  }
  function end(text, good) {
    ended = true;
    if (es) es.close();
    clearQr(good ? "✓" : "—");
    $("countdown").textContent = "";
    var o = $("outcome");
    o.textContent = text;
    o.className = "outcome " + (good ? "good" : "bad");
    o.hidden = false;
    $("how").hidden = true;
    if (!good) offerStart("Start again", "Have the phone at hand, then start again for a new code.");
  }

  function follow(sessionId) {
    ended = false; status = "queued"; expiresAt = null; nextAt = null; shown = 0;
    $("start-box").hidden = true;
    $("outcome").hidden = true;
    $("how").hidden = false;
    $("follow").hidden = false;
    clearQr("Waiting for a QR code…");
    tick();
    es = new EventSource(base + "/events?session=" + encodeURIComponent(sessionId));
    var stream = es;
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
      if (!ended && stream === es && stream.readyState === EventSource.CLOSED) end("This link no longer works — ask for a new one, or reload the page", false);
    };
  }

  function postJson(path, body) {
    return fetch(base + path, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/json" },
      body: JSON.stringify(body)
    }).then(function (r) {
      return r.json().catch(function () { return null; }).then(function (b) {
        if (!r.ok) throw new Error(b && b.error ? b.error.message : "the server answered HTTP " + r.status + "; try again");
        return b;
      });
    });
  }

  $("start").addEventListener("click", function () {
    var err = $("start-error");
    err.hidden = true;
    $("start").disabled = true;
    postJson("/sessions", {}).then(function (b) {
      $("attempt").textContent = "Attempt " + b.session.attempt + " of " + b.session.maxAttempts;
      follow(b.session.id);
    }).catch(function (e) {
      err.textContent = e.message || "Could not start; try again";
      err.hidden = false;
      $("start").disabled = false;
    });
  });

  var pairForm = $("pair-form");
  if (pairForm) pairForm.addEventListener("submit", function (ev) {
    ev.preventDefault();
    var err = $("pair-error");
    err.hidden = true;
    postJson("/pair", { phoneNumber: $("pair-phone").value }).then(function (b) {
      $("pair-code").textContent = b.code;
      $("pair-result").hidden = false;
    }).catch(function (e) {
      err.textContent = e.message || "Could not get a code; try again";
      err.hidden = false;
    });
  });

  setInterval(tick, 250);
  if (boot.sessionId) follow(boot.sessionId);
})();
`;
