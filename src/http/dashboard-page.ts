import type { DashboardFilter, DashboardPage, DashboardRow, TroubledChannel } from "../fleet/observe/dashboard.js";
import { DASHBOARD_PAGE_SIZE, NEVER_CHECKED } from "../fleet/observe/dashboard.js";
import type { FleetStatus } from "../fleet/observe/status.js";
import { duration } from "../lib/duration.js";
import { POLICY_STATES } from "../state-policies.js";
import { escapeHtml, pageHead } from "./live-page.js";
import { renderOperators } from "./dashboard-operators.js";
import type { OperatorChannels } from "../fleet/operators/operators.js";

/**
 * The HTML of the admin dashboard: plain server-rendered pages with inline CSS under the
 * response's nonce and no script; every action is a form POST.
 */

export interface DashboardModel {
  nonce: string;
  status: FleetStatus;
  filter: DashboardFilter;
  page: DashboardPage;
  channels: TroubledChannel[];
  operators: OperatorChannels[];
  /** Live-page links of the rows whose session is running, by instance id. */
  liveLinks: ReadonlyMap<string, string>;
  now: Date;
}

const STYLE = `
:root { color-scheme: light dark; font-family: system-ui, -apple-system, "Segoe UI", sans-serif; }
body { margin: 0; padding: 1rem 1.5rem 3rem; background: Canvas; color: CanvasText; }
h1 { font-size: 1.4rem; margin: 0 0 .8rem; } h2 { font-size: 1.1rem; margin: 1.6rem 0 .5rem; }
header { display: flex; justify-content: space-between; align-items: baseline; gap: 1rem; flex-wrap: wrap; }
.numbers { display: flex; gap: .6rem; flex-wrap: wrap; margin: 0 0 1rem; padding: 0; list-style: none; }
.numbers li { border: 1px solid #8886; border-radius: 8px; padding: .4rem .7rem; }
.numbers b { font-size: 1.2rem; font-variant-numeric: tabular-nums; display: block; }
.numbers a { color: inherit; text-decoration: none; display: block; }
.bad { color: #b3261e; } .muted { opacity: .7; }
form.filters { display: flex; gap: .5rem; flex-wrap: wrap; align-items: center; margin: .5rem 0; }
table { border-collapse: collapse; width: 100%; font-size: .92rem; }
th, td { text-align: left; padding: .3rem .5rem; border-bottom: 1px solid #8884; vertical-align: top; white-space: nowrap; }
td form, form.inline { margin: 0; display: inline; } .pager { display: flex; gap: 1rem; align-items: center; margin: .8rem 0; }
main.narrow { max-width: 28rem; margin: 3rem auto; } input[type=password] { width: 100%; font-size: 1.1rem; padding: .4rem; }
`;

export function renderLoginPage(nonce: string, problem?: string): string {
  return `${pageHead("qrfleet — log in", nonce, STYLE)}
<body>
<main class="narrow">
  <h1>qrfleet dashboard</h1>
  ${problem ? `<p class="bad" role="alert" id="login-error">${escapeHtml(problem)}</p>` : ""}
  <form method="post" action="/admin/login">
    <p><label for="token">Admin token</label></p>
    <p><input id="token" name="token" type="password" autocomplete="current-password" required autofocus></p>
    <p><button type="submit">Log in</button></p>
  </form>
  <p class="muted">The token is the daemon's QRFLEET_ADMIN_TOKEN. The browser keeps a cookie derived from it, not the token itself.</p>
</main>
</body>
</html>`;
}

export function renderMessagePage(nonce: string, status: number, title: string, message: string, back = "/admin"): string {
  return `${pageHead(title, nonce, STYLE)}
<body>
<main class="narrow">
  <h1>${escapeHtml(title)}</h1>
  <p class="muted">HTTP ${status}</p>
  <p id="message">${escapeHtml(message)}</p>
  <p><a href="${escapeHtml(back)}">Back to the dashboard</a></p>
</main>
</body>
</html>`;
}

export function renderDashboard(m: DashboardModel): string {
  return `${pageHead("qrfleet — fleet", m.nonce, STYLE)}
<body>
<header>
  <h1>qrfleet fleet</h1>
  <nav><a href="/admin/queues/">Queues</a> <form method="post" action="/admin/logout" class="inline"><button type="submit">Log out</button></form></nav>
</header>
${renderNumbers(m.status)}
<h2>Instances</h2>
${renderFilters(m.filter)}
${renderTable(m)}
${renderPager(m.filter, m.page.total)}
<h2>Failing channels</h2>
${renderChannels(m.channels, m.now)}
<h2 id="operators-heading">Operators</h2>
${renderOperators(m.operators)}
</body>
</html>`;
}

function renderNumbers(s: FleetStatus): string {
  const item = (id: string, label: string, value: number | string, bad = false, raw?: number, href?: string) => {
    const body = `<b>${escapeHtml(String(value))}</b>${escapeHtml(label)}`;
    return `<li id="n-${id}" data-value="${escapeHtml(String(raw ?? value))}"${bad ? ' class="bad"' : ""}>${href ? `<a href="${escapeHtml(href)}">${body}</a>` : body}</li>`;
  };
  const states = Object.entries(s.instances.byState).sort(([a], [b]) => a.localeCompare(b));
  return `<ul class="numbers" id="numbers">
  ${item("total", "instances", s.instances.total)}
  ${item("enabled", "enabled", s.instances.enabled)}
  ${item("attention", "need attention", s.instances.attention, s.instances.attention > 0)}
  ${states.map(([state, n]) => item(`state-${state}`, state, n, false, undefined, `/admin?state=${encodeURIComponent(state)}`)).join("\n  ")}
  ${item("running", "sessions running", s.sessions.running)}
  ${item("queued", "sessions queued", s.sessions.queued)}
  ${item("alerts", "alerts open", s.alertsOpen, s.alertsOpen > 0, undefined, "/admin?alert=1")}
  ${item("failing", "channels failing", s.channels.failing, s.channels.failing > 0)}
  ${item("disabled", "channels disabled", s.channels.disabled, s.channels.disabled > 0)}
  ${item("unlinked", "longest unlinked", duration(s.instances.longestUnlinkedSeconds), false, s.instances.longestUnlinkedSeconds)}
</ul>`;
}

function renderFilters(f: DashboardFilter): string {
  const options = [...POLICY_STATES, NEVER_CHECKED]
    .map((s) => `<option value="${s}"${f.state === s ? " selected" : ""}>${s}</option>`)
    .join("");
  return `<form class="filters" method="get" action="/admin">
  <select name="state" aria-label="Provider state"><option value="">any state</option>${options}</select>
  <input name="q" value="${escapeHtml(f.q ?? "")}" placeholder="label or idInstance" aria-label="Search" maxlength="200">
  <label><input type="checkbox" name="alert" value="1"${f.alert ? " checked" : ""}> open alert only</label>
  ${f.unlinkedSince ? `<label><input type="checkbox" name="unlinked_since" value="${escapeHtml(f.unlinkedSince.toISOString())}" checked> unlinked since ${escapeHtml(f.unlinkedSince.toISOString().slice(0, 16).replace("T", " "))} UTC</label>` : ""}
  <button type="submit">Filter</button>
</form>`;
}

function renderTable(m: DashboardModel): string {
  if (m.page.rows.length === 0) return `<p id="no-rows">No instance matches.</p>`;
  return `<table id="instances">
<thead><tr><th>idInstance</th><th>Label</th><th>State</th><th>Unlinked since</th><th>Last session</th><th>Open alerts</th><th>Flags</th><th></th></tr></thead>
<tbody>
${m.page.rows.map((r) => renderRow(r, m.liveLinks.get(r.id), m.now)).join("\n")}
</tbody>
</table>`;
}

function renderRow(r: DashboardRow, live: string | undefined, now: Date): string {
  const flags = [r.enabled ? "" : "disabled", r.attention ? `attention: ${r.attention}` : ""].filter(Boolean).join(", ");
  return `<tr data-id="${escapeHtml(r.idInstance)}">
  <td>${escapeHtml(r.idInstance)}</td>
  <td>${escapeHtml(r.label ?? "")}</td>
  <td class="state">${escapeHtml(r.lastState ?? NEVER_CHECKED)}</td>
  <td>${r.unlinkedSince ? `${ago(r.unlinkedSince, now)} <span class="muted">${shortTime(r.unlinkedSince)}</span>` : ""}</td>
  <td class="session">${renderSession(r, live)}</td>
  <td class="alerts${r.alerts.length ? " bad" : ""}">${escapeHtml(r.alerts.join(", "))}</td>
  <td class="flags${r.attention ? " bad" : ""}">${escapeHtml(flags)}</td>
  <td><form method="post" action="/admin/instances/${encodeURIComponent(r.id)}/start"><button type="submit">Start</button></form></td>
</tr>`;
}

function renderSession(r: DashboardRow, live: string | undefined): string {
  if (!r.session) return "";
  const text = escapeHtml(`${r.session.status} (attempt ${r.session.attempt}/${r.session.maxAttempts})`);
  // The live link carries a signed token: it is only ever this href, opened in its own tab.
  return live ? `${text} <a class="live" href="${escapeHtml(live)}" target="_blank" rel="noopener noreferrer">live QR</a>` : text;
}

function renderPager(f: DashboardFilter, total: number): string {
  const pages = Math.max(1, Math.ceil(total / DASHBOARD_PAGE_SIZE));
  const link = (page: number, text: string, rel: string) => `<a rel="${rel}" href="${escapeHtml(filterUrl(f, page))}">${text}</a>`;
  return `<nav class="pager" id="pager">
  ${f.page > 1 ? link(f.page - 1, "← previous", "prev") : ""}
  <span>page ${f.page} of ${pages} · ${total} instance${total === 1 ? "" : "s"}</span>
  ${f.page < pages ? link(f.page + 1, "next →", "next") : ""}
</nav>`;
}

export function filterUrl(f: DashboardFilter, page: number): string {
  const params = new URLSearchParams();
  if (f.state) params.set("state", f.state);
  if (f.q) params.set("q", f.q);
  if (f.alert) params.set("alert", "1");
  if (f.unlinkedSince) params.set("unlinked_since", f.unlinkedSince.toISOString());
  if (page > 1) params.set("page", String(page));
  const query = params.toString();
  return query ? `/admin?${query}` : "/admin";
}

function renderChannels(channels: TroubledChannel[], now: Date): string {
  if (channels.length === 0) return `<p id="no-channels">Every channel delivers.</p>`;
  const row = (c: TroubledChannel) => {
    const why = c.enabled ? `failing since ${c.failingSince ? ago(c.failingSince, now) : "?"}` : `disabled: ${c.disabledReason ?? "no reason recorded"}`;
    return `<tr><td>${escapeHtml(c.operator)}</td><td>${escapeHtml(c.kind)}</td><td>${escapeHtml(c.address)}</td><td class="bad">${escapeHtml(why)}</td></tr>`;
  };
  return `<table id="channels"><thead><tr><th>Operator</th><th>Kind</th><th>Address</th><th>Problem</th></tr></thead>
<tbody>${channels.map(row).join("\n")}</tbody></table>`;
}

/** Absolute time to the minute, in UTC like the logs. */
function shortTime(at: Date): string {
  return `${at.toISOString().slice(0, 16).replace("T", " ")} UTC`;
}

function ago(at: Date, now: Date): string {
  const seconds = Math.round((now.getTime() - at.getTime()) / 1000);
  return seconds > 0 ? `${duration(seconds)} ago` : "just now";
}
