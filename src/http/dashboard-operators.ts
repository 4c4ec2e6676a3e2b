import type { OperatorChannels } from "../fleet/operators/operators.js";
import { escapeHtml } from "./live-page.js";

/**
 * The dashboard's operators: each channel with how it gets events, and a form that changes it
 * (a same-origin POST to /admin/channels/:id/mode, as the Start button is).
 */

const MODES = [
  ["default", "default for its place"],
  ["immediate", "immediate"],
  ["digest", "digest"],
] as const;

export function renderOperators(operators: readonly OperatorChannels[]): string {
  if (operators.length === 0) return `<p id="no-operators">No operators yet: <code>qrfleet operator add</code> adds one.</p>`;
  const rows = operators.flatMap((o) =>
    o.channels.map((c) => {
      const chosen = c.modeSet ? c.mode : "default";
      const options = MODES.map(([value, label]) => `<option value="${value}"${value === chosen ? " selected" : ""}>${label}</option>`).join("");
      const place = o.instances === 0 ? "whole fleet" : `${o.instances} instance${o.instances === 1 ? "" : "s"}`;
      return `<tr data-channel="${escapeHtml(c.id)}"><td>${escapeHtml(o.name)}</td><td>${escapeHtml(place)}</td><td>${escapeHtml(c.kind)}</td>` +
        `<td>${escapeHtml(c.address)}</td><td class="mode">${escapeHtml(c.mode)}${c.modeSet ? "" : " (default)"}</td>` +
        `<td><form method="post" action="/admin/channels/${encodeURIComponent(c.id)}/mode" class="inline">` +
        `<select name="mode" aria-label="Mode of ${escapeHtml(o.name)}'s ${escapeHtml(c.kind)}">${options}</select> <button type="submit">Set</button></form></td></tr>`;
    }),
  );
  return `<table id="operators"><thead><tr><th>Operator</th><th>Looks after</th><th>Kind</th><th>Address</th><th>Mode</th><th></th></tr></thead>
<tbody>${rows.join("\n")}</tbody></table>`;
}
