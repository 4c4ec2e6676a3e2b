// npm run bench: one daemon process holding many concurrent QR sessions against the simulator.
// Environment: BENCH_SESSIONS (default 2000), BENCH_SECONDS (hold time, default 60),
// BENCH_ROTATION_MS (20000), BENCH_WINDOW_MS (100000), plus the usual DATABASE_URL/REDIS_URL.
import { fork } from "node:child_process";
import { randomBytes } from "node:crypto";
import path from "node:path";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { dropDatabase } from "../src/databases.js";
import { loadConfig } from "../src/config.js";
import { createLogger } from "../src/log.js";
import { enqueueSession } from "../src/fleet/sessions.js";
import { generateInstances } from "../src/simulator/index.js";
import { startDaemon } from "../workers/daemon.js";
import { benchSettings, databaseFor, sampleLine, summary, type Sample } from "./report.js";

const s = benchSettings();
const sim = fork(path.join(import.meta.dirname, "sim-child.js"), [String(s.sessions), String(s.rotationMs), String(s.windowMs)]);
const simUrl = await new Promise<string>((resolve) => sim.once("message", (m) => resolve((m as { url: string }).url)));
const databaseUrl = await databaseFor(s.adminUrl, `qrfleet_bench_${randomBytes(3).toString("hex")}`);

const config = loadConfig({
  ...process.env,
  DATABASE_URL: databaseUrl,
  QRFLEET_REDIS_PREFIX: `qrfleet_bench_${randomBytes(3).toString("hex")}`,
  QRFLEET_SECRET_KEY: randomBytes(32).toString("base64"),
  QRFLEET_ADMIN_TOKEN: randomBytes(16).toString("hex"),
  QRFLEET_CONCURRENCY: String(s.sessions),
  QRFLEET_SILENCE_MS: String(s.rotationMs * 3),
  QRFLEET_SWEEP_INTERVAL_MS: "3600000",
  PORT: "0",
  LOG_LEVEL: "warn",
});
const daemon = await startDaemon(config, createLogger({ level: "warn" }));
const { ctx } = daemon;

const defs = generateInstances(s.sessions, { idPrefix: "7301", seed: 7 });
for (let i = 0; i < defs.length; i += 1000) {
  await ctx.db.instance.createMany({
    data: defs.slice(i, i + 1000).map((d) => ({ apiUrl: simUrl, idInstance: d.idInstance, tokenCiphertext: ctx.box.seal(d.token) })),
  });
}
const instances = await ctx.db.instance.findMany({ select: { id: true, idInstance: true, apiUrl: true, maxAttempts: true, backoffBaseMs: true, backoffMaxMs: true } });

const loop = monitorEventLoopDelay({ resolution: 10 });
loop.enable();
let lockLost = 0;
ctx.events.on("session:transition", (t) => {
  if (t.reason === "job lock lost") lockLost++;
});
const t0 = Date.now();
const cpu0 = process.cpuUsage();
for (let i = 0; i < instances.length; i += 200) {
  await Promise.all(instances.slice(i, i + 200).map((inst) => enqueueSession(ctx, inst as never, "admin")));
}
const enqueueMs = Date.now() - t0;
console.log(`enqueued ${instances.length} sessions in ${enqueueMs} ms`);

const samples: Sample[] = [];
let lastCpu = process.cpuUsage();
let lastAt = Date.now();
let lastQr = 0;
const deadline = t0 + s.seconds * 1000;
while (Date.now() < deadline) {
  await new Promise((r) => setTimeout(r, 5000));
  const now = Date.now();
  const cpu = process.cpuUsage(lastCpu);
  const [running, qr] = await Promise.all([
    ctx.db.qrSession.count({ where: { status: "running" } }),
    ctx.db.qrCode.count(),
  ]);
  const sample: Sample = {
    t: (now - t0) / 1000,
    running,
    qrPerSec: (qr - lastQr) / ((now - lastAt) / 1000),
    cpuPct: ((cpu.user + cpu.system) / 1000 / (now - lastAt)) * 100,
    rssMb: process.memoryUsage().rss / 2 ** 20,
    loopP99Ms: loop.percentile(99) / 1e6,
    loopMaxMs: loop.max / 1e6,
  };
  samples.push(sample);
  console.log(sampleLine(sample));
  loop.reset();
  lastCpu = process.cpuUsage();
  lastAt = now;
  lastQr = qr;
}
const totalCpu = process.cpuUsage(cpu0);
console.log(summary({ settings: s, samples, enqueueMs, lockLost, totalCpuMs: (totalCpu.user + totalCpu.system) / 1000, wallMs: Date.now() - t0 }));

await daemon.close();
sim.kill("SIGTERM");
await dropDatabase(s.adminUrl, new URL(databaseUrl).pathname.slice(1));
process.exit(0);
