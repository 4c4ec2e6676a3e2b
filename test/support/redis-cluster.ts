import { execFile, spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { Redis } from "ioredis";
import { freePort } from "../../bench/daemons.js";
import { waitFor } from "./fleet.js";

/**
 * A Redis Cluster of the test's own: three masters, no replicas, nothing on disk, in a temporary
 * directory, on free ports (the cluster bus too: port + 10000 may not exist for a high port).
 */
export interface OwnRedisCluster {
  /** One node's URL: the seed a daemon is given, as a managed cluster's endpoint would be. */
  url: string;
  ports: number[];
  /** Every key of every node, in one list per node. */
  keysByNode(): Promise<string[][]>;
  stop(): Promise<void>;
}

const NODES = 3;
const run = promisify(execFile);

function launch(dir: string, port: number, busPort: number): ChildProcess {
  const child = spawn(
    "redis-server",
    [
      "--port", String(port), "--cluster-port", String(busPort), "--bind", "127.0.0.1",
      "--cluster-enabled", "yes", "--cluster-config-file", `nodes-${port}.conf`, "--dir", dir,
      "--save", "", "--appendonly", "no", "--daemonize", "no",
    ],
    { stdio: "ignore" },
  );
  child.on("error", () => undefined);
  return child;
}

const node = (port: number) => new Redis({ port, host: "127.0.0.1", maxRetriesPerRequest: 3, retryStrategy: (n) => (n > 50 ? null : 100) });

async function clusterStateOk(port: number): Promise<boolean> {
  const redis = node(port);
  redis.on("error", () => undefined);
  try {
    return /cluster_state:ok/.test(String(await redis.cluster("INFO")));
  } catch {
    return false;
  } finally {
    redis.disconnect();
  }
}

async function scanAll(port: number): Promise<string[]> {
  const redis = node(port);
  try {
    const keys: string[] = [];
    let cursor = "0";
    do {
      const [next, batch] = await redis.scan(cursor, "COUNT", 1000);
      keys.push(...batch);
      cursor = next;
    } while (cursor !== "0");
    return keys;
  } finally {
    redis.disconnect();
  }
}

export async function startRedisCluster(): Promise<OwnRedisCluster> {
  const dir = await mkdtemp(path.join(tmpdir(), "qrfleet-cluster-"));
  const ports: number[] = [];
  const children: ChildProcess[] = [];
  const stop = async () => {
    await Promise.all(
      children.map((child) => {
        if (child.exitCode !== null || child.signalCode !== null) return undefined;
        const exited = new Promise((r) => child.once("exit", r));
        child.kill("SIGKILL");
        return exited;
      }),
    );
    await rm(dir, { recursive: true, force: true });
  };
  try {
    for (let i = 0; i < NODES; i++) {
      const [port, busPort] = [await freePort(), await freePort()];
      ports.push(port);
      children.push(launch(dir, port, busPort));
    }
    await waitFor("the cluster nodes to answer", async () => {
      const answers = await Promise.all(ports.map((p) => run("redis-cli", ["-p", String(p), "ping"]).then((r) => r.stdout.trim(), () => "")));
      return answers.every((a) => a === "PONG");
    }, 10_000);
    await run("redis-cli", ["--cluster", "create", ...ports.map((p) => `127.0.0.1:${p}`), "--cluster-replicas", "0", "--cluster-yes"]);
    await waitFor("every node to report the cluster ok", async () => (await Promise.all(ports.map(clusterStateOk))).every(Boolean), 15_000);
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    url: `redis://127.0.0.1:${ports[0]}`,
    ports,
    keysByNode: () => Promise.all(ports.map(scanAll)),
    stop,
  };
}
