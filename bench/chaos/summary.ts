import type { ScenarioReport } from "./scenario.js";

/**
 * The chaos run's summary, per scenario: what was injected and when, then sessions, QR codes,
 * webhooks and emails expected and received, lost and duplicated, and what was given up by design.
 */
export function formatSummary(reports: readonly ScenarioReport[]): string {
  return reports.map(formatOne).join("\n\n");
}

function formatOne(r: ScenarioReport): string {
  const v = r.verdict;
  const w = v.webhooks;
  const e = v.emails;
  const byStatus = Object.entries(v.sessionsByStatus).map(([s, n]) => `${s} ${n}`).join(", ");
  const lines = [
    `== ${r.name} (${r.durationS} s${r.settleTimedOut ? ", DID NOT SETTLE" : ""})`,
    ...r.injected.map((i) => `   t=${i.atS.toFixed(1).padStart(5)} s  ${i.what}`),
    `   sessions   ${v.sessions} (${byStatus}); still open ${v.sessionsOpen}, attempts without outcome ${v.attemptsOpen}, ended without exactly one outcome ${v.outcomesNotOne}`,
    `   QR codes   ${v.qrCodes} stored, ${v.qrWithoutDelivery} with no webhook delivery; provider frames ${r.frames.sent} sent, ${r.frames.delivered} landed, ${r.frames.superseded} superseded, ${r.frames.lost} never stored or landed`,
    `   webhooks   expected ${w.expected}, received ${w.received}, lost ${w.lost}, duplicated ${w.duplicated}; given up: ${w.expired} expired, ${w.failed} failed (${w.outcomesGivenUp} outcomes); bad signatures ${v.invalidSignatures}`,
    `   emails     expected ${e.expected}, received ${e.received}, lost ${e.lost}, duplicated ${e.duplicated}; interrupted by a crash ${e.interrupted}; given up: ${e.expired} expired, ${e.failed} failed (${e.outcomesGivenUp} outcomes)`,
    `   daemons    ${r.unexpectedExits.length === 0 ? "all alive (none exited on its own)" : r.unexpectedExits.join("; ")}`,
  ];
  return lines.join("\n");
}

/** Zero lost and zero duplicated everywhere, nothing left open, no daemon gone on its own. */
export function isClean(r: ScenarioReport): boolean {
  const v = r.verdict;
  return (
    !r.settleTimedOut && v.sessionsOpen === 0 && v.attemptsOpen === 0 && v.outcomesNotOne === 0 && v.qrWithoutDelivery === 0 && v.invalidSignatures === 0 &&
    v.webhooks.lost === 0 && v.webhooks.duplicated === 0 && v.emails.lost === 0 && v.emails.duplicated === 0 && r.unexpectedExits.length === 0
  );
}
