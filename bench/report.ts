import { createDatabase } from "../src/databases.js";
import { migrate } from "../src/migrate.js";

export interface BenchSettings {
  sessions: number;
  seconds: number;
  rotationMs: number;
  windowMs: number;
  adminUrl: string;
}

export interface Sample {
  t: number;
  running: number;
  qrPerSec: number;
  cpuPct: number;
  rssMb: number;
  loopP99Ms: number;
  loopMaxMs: number;
}

const num = (v: string | undefined, fallback: number) => (v && Number.isFinite(Number(v)) ? Number(v) : fallback);

export function benchSettings(env = process.env): BenchSettings {
  return {
    sessions: num(env.BENCH_SESSIONS, 2000),
    seconds: num(env.BENCH_SECONDS, 60),
    rotationMs: num(env.BENCH_ROTATION_MS, 20_000),
    windowMs: num(env.BENCH_WINDOW_MS, 100_000),
    adminUrl: env.BENCH_ADMIN_DATABASE_URL ?? "postgresql://postgres@127.0.0.1:5432/postgres",
  };
}

/** A fresh, migrated database for one run. */
export async function databaseFor(adminUrl: string, name: string): Promise<string> {
  const url = await createDatabase(adminUrl, name);
  await migrate(url);
  return url;
}

export function sampleLine(s: Sample): string {
  return `t=${s.t.toFixed(0).padStart(4)}s running=${String(s.running).padStart(6)} qr/s=${s.qrPerSec.toFixed(1).padStart(7)} cpu=${s.cpuPct.toFixed(0).padStart(3)}% rss=${s.rssMb.toFixed(0)}MB loop p99=${s.loopP99Ms.toFixed(1)}ms max=${s.loopMaxMs.toFixed(0)}ms`;
}

export function summary(r: { settings: BenchSettings; samples: Sample[]; enqueueMs: number; lockLost: number; totalCpuMs: number; wallMs: number }): string {
  const held = r.samples.filter((s) => s.running >= r.settings.sessions * 0.99);
  const peak = Math.max(0, ...r.samples.map((s) => s.running));
  const avg = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0);
  return [
    "",
    `sessions asked: ${r.settings.sessions}; peak running at once: ${peak}; samples with ≥99% running: ${held.length}/${r.samples.length}`,
    `enqueue: ${r.enqueueMs} ms (${((r.settings.sessions / r.enqueueMs) * 1000).toFixed(0)}/s)`,
    `CPU of the daemon process: ${((r.totalCpuMs / r.wallMs) * 100).toFixed(0)}% of one core on average; steady state ${avg(held.map((s) => s.cpuPct)).toFixed(0)}%`,
    `QR stored: ${avg(held.map((s) => s.qrPerSec)).toFixed(1)}/s in steady state; event loop p99 ${avg(r.samples.map((s) => s.loopP99Ms)).toFixed(1)} ms, worst ${Math.max(0, ...r.samples.map((s) => s.loopMaxMs)).toFixed(0)} ms`,
    `job locks lost: ${r.lockLost}`,
  ].join("\n");
}
