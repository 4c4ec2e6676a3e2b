import { randomBytes } from "node:crypto";
import path from "node:path";
import { generateInstances } from "../src/simulator/index.js";
import { countLogLines } from "./daemons.js";
import type { FloorApi } from "./floor.js";
import { ChildLink } from "./ipc.js";
import { MeasuredWindow } from "./phase.js";
import { phaseReport, type PhaseReport } from "./phase-report.js";
import { forkChild, type Run } from "./run-context.js";
import { createScratchDatabase, dropScratchDatabase, throughProxy } from "./stores.js";

/** Ids 7301…: the floor's instances never meet the daemon phase's (7302…). */
const FLOOR_ID_PREFIX = "7301";

/** The bare client against the same simulator, receiver and sink as the daemon, measured the same way. */
export async function floorPhase(run: Run): Promise<PhaseReport> {
  const { args, teardown } = run;
  const tag = randomBytes(4).toString("hex");
  const database = `qrfleet_bench_${tag}`;
  const databaseUrl = throughProxy(await createScratchDatabase(database), run.ready.pgProxyPort);
  const dropDatabase = teardown.add(`drop database ${database}`, () => dropScratchDatabase(database));
  const instances = generateInstances(args.sessions, { idPrefix: FLOOR_ID_PREFIX, seed: tag });
  const { simUrl } = await run.peers.call("phase", { path: "/floor", instances, rotateMs: args.rotateMs, windowMs: args.windowMs });
  const endPhase = teardown.add("end the floor phase", () => run.peers.call("endPhase", null));
  const secret = `whsec_${randomBytes(32).toString("base64")}`;
  await run.peers.call("trust", { path: "/floor", secret });

  const t0 = Date.now();
  const window = new MeasuredWindow(run, "floor", t0);
  const child = forkChild("floor.js", run.runDir, "floor.log");
  const floor = new ChildLink<FloorApi>(child, "the bare client");
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  void exited.then(() => window.meter.retire(child.pid!));
  const stop = teardown.add("stop the bare client", async () => {
    await Promise.race([floor.call("stop", null, 10_000).catch(() => undefined).then(() => exited), new Promise((r) => setTimeout(r, 12_000))]);
    child.kill("SIGKILL");
  });
  window.meter.add(child.pid!);
  let stopping = false;
  const died = exited.then(() => {
    if (!stopping) throw new Error(`the bare client exited during the run (see ${path.join(run.runDir, "floor.log")})`);
    return new Promise<never>(() => undefined);
  });
  died.catch(() => undefined);
  await floor.call("start", { simUrl, instances, databaseUrl, webhookUrl: `${run.ready.receiverUrl}/floor`, secret, smtpUrl: run.ready.smtpUrl }, 60_000);
  window.markReady();

  const measured = await window.until(t0 + args.seconds * 1000, died);
  const counts = await floor.call("counts", null);
  stopping = true;
  await stop();
  const logPath = path.join(run.runDir, "floor.log");
  const logs = await countLogLines(logPath);
  await endPhase();
  await dropDatabase();
  return phaseReport({ args, t0, measured, logs: { jobsFailed: counts.failed, errorLines: logs.errorLines }, logPaths: [logPath] });
}
