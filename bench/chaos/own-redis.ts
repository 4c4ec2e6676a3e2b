import { spawn, type ChildProcess } from "node:child_process";
import { Redis } from "ioredis";
import { freePort } from "../daemons.js";

/**
 * A redis-server of the fault run's own, a child process on a free port with nothing on disk:
 * restarting it loses everything, as the design expects of Redis, and FLUSHALL on it touches no
 * one else's keys (the machine's shared Redis on 6379 is never used by a fault run).
 */
export interface OwnRedis {
  port: number;
  url: string;
  /** Kills the server (SIGKILL: whatever it held is gone), then starts a new one on the same port after `downMs`. */
  restart(downMs: number): Promise<void>;
  flushAll(): Promise<void>;
  stop(): Promise<void>;
}

const BOUND_MS = 10_000;

function launch(port: number): ChildProcess {
  const child = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--daemonize", "no"], {
    stdio: "ignore",
  });
  child.on("error", () => undefined);
  return child;
}

async function untilAnswering(url: string): Promise<void> {
  const deadline = Date.now() + BOUND_MS;
  for (;;) {
    const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 1_000 });
    redis.on("error", () => undefined);
    try {
      await redis.connect();
      if ((await redis.ping()) === "PONG") return;
    } catch {
      if (Date.now() > deadline) throw new Error(`redis-server on ${url} did not answer within ${BOUND_MS / 1000} s`);
      await new Promise((r) => setTimeout(r, 100));
    } finally {
      redis.disconnect();
    }
  }
}

async function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once("exit", r));
  child.kill("SIGKILL");
  await exited;
}

export async function startOwnRedis(): Promise<OwnRedis> {
  const port = await freePort();
  const url = `redis://127.0.0.1:${port}`;
  let child = launch(port);
  await untilAnswering(url);
  return {
    port,
    url,
    async restart(downMs) {
      await kill(child);
      await new Promise((r) => setTimeout(r, downMs));
      child = launch(port);
      await untilAnswering(url);
    },
    async flushAll() {
      const redis = new Redis(url, { maxRetriesPerRequest: 3 });
      try {
        await redis.flushall();
      } finally {
        redis.disconnect();
      }
    },
    stop: () => kill(child),
  };
}
