import { randomBytes } from "node:crypto";
import { generateInstances } from "../src/simulator/index.js";
import { countLogLines } from "./daemons.js";
import type { FloorApi } from "./floor.js";
import { MeasuredWindow } from "./phase.js";
import { phaseReport, type PhaseReport } from "./phase-report.js";
import { forkMeasuredChild, scratchDatabase, type Run } from "./run-context.js";

/** Ids 7301…: the floor's instances never meet the daemon phase's (7302…). */
const FLOOR_ID_PREFIX = "7301";

/** The bare client against the same simulator, receiver and sink as the daemon, measured the same way. */
export async function floorPhase(run: Run): Promise<PhaseReport> {
  const { args, teardown } = run;
  const { tag, databaseUrl, drop: dropDatabase } = await scratchDatabase(run);
  const instances = generateInstances(args.sessions, { idPrefix: FLOOR_ID_PREFIX, seed: tag });
  const { simUrl } = await run.peers.call("phase", { path: "/floor", instances, rotateMs: args.rotateMs, windowMs: args.windowMs });
  const endPhase = teardown.add("end the floor phase", () => run.peers.call("endPhase", null));
  const secret = `whsec_${randomBytes(32).toString("base64")}`;
  await run.peers.call("trust", { path: "/floor", secret });

  const t0 = Date.now();
  const window = new MeasuredWindow(run, "floor", t0);
  const { link: floor, died, stop, logPath } = forkMeasuredChild<FloorApi>(run, "floor.js", "the bare client", window.meter);
  await floor.call("start", { simUrl, instances, databaseUrl, webhookUrl: `${run.ready.receiverUrl}/floor`, secret, smtpUrl: run.ready.smtpUrl }, 60_000);
  window.markReady();

  const measured = await window.until(t0 + args.seconds * 1000, died);
  const counts = await floor.call("counts", null);
  await stop();
  const logs = await countLogLines(logPath);
  await endPhase();
  await dropDatabase();
  return phaseReport({ args, t0, measured, logs: { jobsFailed: counts.failed, errorLines: logs.errorLines }, logPaths: [logPath] });
}
