import { expect } from "vitest";
import type { ScenarioReport } from "../../bench/chaos/scenario.js";

/**
 * What every scenario must come to: each session ended with one outcome, nothing owed left
 * pending, no webhook or email lost or duplicated, every outcome event delivered, every daemon
 * alive unless killed, and the daemons' output JSON log lines only.
 * `crashes`: kill -9s of the scenario. A webhook accepted just before its sender died, before its
 * result was written, is sent again under the same webhook-id (receivers deduplicate, as Standard
 * Webhooks asks), and an email handed to SMTP just before is never resent (at most once): only a
 * crash allows either, and only for what landed in the moments before it.
 */
/** How long a sent webhook's result may wait to be written, on a loaded machine: only those landed this close before a kill may land again. */
const RESULT_WRITE_BOUND_MS = 5_000;

export function expectNothingLost(r: ScenarioReport, sessions: number, crashes = 0): void {
  const v = r.verdict;
  const shown = { scenario: r.name, injected: r.injected };
  expect({ ...shown, settled: !r.settleTimedOut, open: v.sessionsOpen, attemptsOpen: v.attemptsOpen, outcomesNotOne: v.outcomesNotOne })
    .toEqual({ ...shown, settled: true, open: 0, attemptsOpen: 0, outcomesNotOne: 0 });
  // Instances the provider reports linked are found so by the start-up sweep and get no session.
  expect(v.sessions).toBeGreaterThanOrEqual(sessions * 0.9);
  expect(v.qrCodes).toBeGreaterThan(0);
  expect({ ...shown, qrWithoutDelivery: v.qrWithoutDelivery, invalidSignatures: v.invalidSignatures }).toEqual({ ...shown, qrWithoutDelivery: 0, invalidSignatures: 0 });
  const w = v.webhooks;
  expect({ ...shown, lost: w.lost, failed: w.failed, outcomesGivenUp: w.outcomesGivenUp }).toEqual({ ...shown, lost: 0, failed: 0, outcomesGivenUp: 0 });
  const kills = r.injected.filter((i) => i.what.startsWith("kill -9")).map((i) => i.atMs);
  expect(kills).toHaveLength(crashes);
  const unexplained = w.duplicatesFirstLandedAt.filter((at) => !kills.some((kill) => at <= kill && kill - at <= RESULT_WRITE_BOUND_MS));
  expect({ ...shown, duplicatesNotFromACrash: unexplained.length }).toEqual({ ...shown, duplicatesNotFromACrash: 0 });
  const e = v.emails;
  expect({ ...shown, lost: e.lost, duplicated: e.duplicated, failed: e.failed }).toEqual({ ...shown, lost: 0, duplicated: 0, failed: 0 });
  if (crashes === 0) expect({ ...shown, interrupted: e.interrupted, outcomesGivenUp: e.outcomesGivenUp }).toEqual({ ...shown, interrupted: 0, outcomesGivenUp: 0 });
  expect(e.received).toBeGreaterThanOrEqual(e.expected);
  expect(r.unexpectedExits).toEqual([]);
  const notJson = r.captured.daemonLogLines.filter((l) => !isJson(l));
  expect(notJson.slice(0, 5)).toEqual([]);
}

function isJson(line: string): boolean {
  try {
    return typeof JSON.parse(line) === "object";
  } catch {
    return false;
  }
}
