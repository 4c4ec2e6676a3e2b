import { describe, expect, it } from "vitest";
import { pollShares, sumSeries } from "../../bench/daemon-metrics.js";
import { LogoutPlan } from "../../bench/logouts.js";
import { PollLedger } from "../../bench/poll-ledger.js";
import { importCsvChunks, watchInstances } from "../../bench/watch-fleet.js";

describe("the poll ledger", () => {
  it("reports each instance's longest time unchecked, counting gaps that end in the window and the window's end", () => {
    const polls = new PollLedger(3, 0);
    polls.begin(1_000);
    polls.startWindow(61_000);
    // Instance 0: every 60 s. Instance 1: once before the window, then a 150 s gap. Instance 2: never.
    for (const at of [10_000, 70_000, 130_000, 190_000]) polls.answered(0, at);
    polls.answered(1, 20_000);
    polls.answered(1, 170_000);
    polls.close(200_000);
    polls.answered(0, 250_000); // after the window: not counted
    const result = polls.result(300_000);
    expect(result).toMatchObject({ answers: 7, windowAnswers: 4, windowMs: 139_000, unpolled: 1, neverPolled: 1 });
    expect(result.uncheckedMs).toEqual({ p50: 150_000, p99: 199_000, max: 199_000 });
  });

  it("stops tracking an instance at its logout: its session watches it from then on", () => {
    const polls = new PollLedger(2, 0);
    polls.begin(0);
    polls.startWindow(0);
    polls.answered(0, 10_000);
    polls.answered(1, 10_000);
    polls.stop(1, 15_000);
    polls.answered(1, 20_000); // a poll after the logout changes nothing
    polls.close(100_000);
    const result = polls.result(100_000);
    expect(result.uncheckedMs.max).toBe(90_000); // instance 0's tail; instance 1's ended at its logout
    expect(result.uncheckedMs.p50).toBe(10_000);
    expect(result.unpolled).toBe(0);
  });
});

describe("the logout plan", () => {
  it("logs out instances spread over the fleet, evenly over the time given, and times each to its first QR", async () => {
    const plan = new LogoutPlan(100, 4);
    const done: Array<{ index: number; at: number }> = [];
    const start = Date.now();
    plan.start(200, (index) => done.push({ index, at: Date.now() - start }), start);
    await new Promise((r) => setTimeout(r, 400));
    expect(done.map((d) => d.index)).toEqual([0, 25, 50, 75]);
    done.forEach((d, k) => expect(d.at).toBeGreaterThanOrEqual(k * 50 - 1));
    const firstQr = new Map([[0, start + 1_000], [25, start + 2_000], [50, NaN]]);
    const result = plan.result((i) => firstQr.get(i) ?? NaN);
    expect(result).toMatchObject({ planned: 4, done: 4, lost: 2 });
    expect(result.toFirstQrMs.max).toBeGreaterThan(1_500);
    expect(() => new LogoutPlan(3, 4)).toThrow(/cannot log out 4 of 3/);
  });
});

describe("the daemons' poll counters", () => {
  it("sums every series of the counter, and shares the differences between daemons", () => {
    const text = [
      "# HELP qrfleet_sweep_polls_total State checks",
      "# TYPE qrfleet_sweep_polls_total counter",
      'qrfleet_sweep_polls_total{outcome="ok"} 120',
      'qrfleet_sweep_polls_total{outcome="error"} 3',
      "qrfleet_sweep_polls_total_created 1700000000",
      "qrfleet_sessions_total 9",
    ].join("\n");
    expect(sumSeries(text, "qrfleet_sweep_polls_total")).toBe(123);
    expect(sumSeries("qrfleet_sessions_total 9\n", "qrfleet_sweep_polls_total")).toBeNull();
    expect(pollShares([100, 50], [400, 150])).toEqual([0.75, 0.25]);
    expect(pollShares([100, null], [400, 150])).toBeNull();
  });
});

describe("the watch fleet", () => {
  it("is the same fleet wherever it is made, with webhook tokens when asked, in import files of 10,000 rows", () => {
    const spec = { count: 25_001, idPrefix: "7304", seed: "ab12", webhookTokens: true };
    const fleet = watchInstances(spec);
    expect(watchInstances(spec)).toEqual(fleet);
    expect(fleet[0]!.webhookToken).toMatch(/^[0-9a-f]{40}$/);
    const chunks = importCsvChunks(fleet, "http://127.0.0.1:1");
    expect(chunks.map((c) => c.trim().split("\n").length - 1)).toEqual([10_000, 10_000, 5_001]);
    expect(chunks[2]!.split("\n")[0]).toBe("apiUrl,idInstance,token,webhookToken");
    expect(chunks[0]!.split("\n")[1]).toBe(`http://127.0.0.1:1,${fleet[0]!.idInstance},${fleet[0]!.token},${fleet[0]!.webhookToken}`);
    expect(watchInstances({ ...spec, count: 2, webhookTokens: false })[0]!.webhookToken).toBeUndefined();
  });
});
