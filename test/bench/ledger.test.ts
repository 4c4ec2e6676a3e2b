import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { DeliveryLedger } from "../../bench/ledger.js";

/** The sha256 of frame n's (pretend) PNG. */
const sha = (n: number) => createHash("sha256").update(`frame ${n}`).digest("hex");
const A = "7302000001";
const B = "7302000002";

function ledgerWithFrames() {
  const ledger = new DeliveryLedger([A, B]);
  ledger.socketOpened(A, 1);
  ledger.socketOpened(B, 1);
  // A sends 1, 2, 3; B sends 4, 5.
  ledger.frameSent({ idInstance: A, connection: 1, sha256: sha(1), at: 1000 });
  ledger.frameSent({ idInstance: B, connection: 1, sha256: sha(4), at: 1005 });
  ledger.frameSent({ idInstance: A, connection: 1, sha256: sha(2), at: 2000 });
  ledger.frameSent({ idInstance: A, connection: 1, sha256: sha(3), at: 3000 });
  ledger.frameSent({ idInstance: B, connection: 1, sha256: sha(5), at: 3005 });
  return ledger;
}

const hook = (webhookId: string, n: number | null, at: number, type = "qr.updated") => ({ webhookId, type, pngSha256: n === null ? null : sha(n), at });

describe("delivery ledger", () => {
  it("matches webhooks to frames by image: latency, superseded, lost", () => {
    const ledger = ledgerWithFrames();
    ledger.webhook(hook("w1", 1, 1040));
    ledger.webhook(hook("w3", 3, 3100)); // A's frame 2 never came, but the newer 3 did: superseded
    ledger.webhook(hook("w4", 4, 1025)); // B's frame 5 never came and nothing newer did: lost
    const r = ledger.result();
    expect(r).toMatchObject({ sent: 5, delivered: 3, superseded: 1, lost: 1, duplicated: 0, unmatched: 0 });
    expect(r.latencyMs).toEqual({ p50: 40, p99: 100, max: 100 });
  });

  it("counts a webhook-id or a frame seen twice as a duplicate, once", () => {
    const ledger = ledgerWithFrames();
    ledger.webhook(hook("w1", 1, 1010));
    ledger.webhook(hook("w1", 1, 1020)); // a retry with the same id
    ledger.webhook(hook("w1-again", 1, 1030)); // the same image under a new id
    expect(ledger.result()).toMatchObject({ delivered: 1, duplicated: 2 });
    expect(ledger.webhooks).toBe(3);
  });

  it("keeps other event types, and images it never sent, apart", () => {
    const ledger = ledgerWithFrames();
    ledger.webhook(hook("t1", null, 5000, "session.timed_out"));
    ledger.webhook(hook("t2", null, 5000, "session.timed_out"));
    ledger.webhook(hook("x", 99, 5000));
    ledger.webhook(hook("y", null, 5000));
    expect(ledger.result()).toMatchObject({ delivered: 0, unmatched: 2, otherEvents: { "session.timed_out": 2 } });
  });

  it("attributes an email to its instance's current connection: by header, or by the idInstance in the text", () => {
    const ledger = ledgerWithFrames();
    ledger.email(`X-Qrfleet-Instance: ${A}\r\nSubject: hi\r\n\r\nbody`, 1500);
    ledger.email(`Subject: Scan needed: ${B} (attempt 1 of 5)\r\n\r\nbody 1234567`, 1805);
    ledger.email(`X-Qrfleet-Instance: ${A}\r\n\r\nagain`, 1600); // same connection of A: a duplicate
    ledger.socketOpened(A, 2);
    ledger.frameSent({ idInstance: A, connection: 2, sha256: sha(6), at: 4000 });
    ledger.email(`X-Qrfleet-Instance: ${A}\r\n\r\nnext attempt`, 4300); // a new connection: not a duplicate
    ledger.email("Subject: about 9999999999\r\n\r\nnobody we know", 4400);
    const r = ledger.result();
    expect(r).toMatchObject({ emails: 5, emailDuplicates: 1, emailUnmatched: 1 });
    expect(r.emailLatencyMs).toEqual({ p50: 500, p99: 800, max: 800 });
  });

  it("counts a digest and a fleet incident as emails about the fleet, timing no instance they name", () => {
    const ledger = ledgerWithFrames();
    ledger.email(`X-Qrfleet-Event: digest\r\nSubject: qrfleet digest\r\n\r\n"Shop" (${A}) ${B}`, 30_000);
    ledger.email(`X-Qrfleet-Event: fleet.incident\r\n\r\n10000 instances`, 31_000);
    const r = ledger.result();
    expect(r).toMatchObject({ emails: 2, emailsAboutTheFleet: 2, emailUnmatched: 0, emailDuplicates: 0 });
    expect(r.emailLatencyMs.p99).toBeNull();
  });

  it("tracks open sockets and when all sessions first had one", () => {
    const ledger = new DeliveryLedger([A, B]);
    ledger.socketOpened(A, 1);
    expect(ledger.result().allOpenAt).toBeNull();
    ledger.socketOpened(B, 1);
    ledger.socketClosed(A);
    ledger.socketOpened("1111111111", 1); // not an instance of this phase
    const r = ledger.result();
    expect(ledger.open).toBe(1);
    expect(r.socketsOpenMax).toBe(2);
    expect(r.allOpenAt).toBeGreaterThan(0);
  });
});
