import { parseArgs } from "node:util";
import { pino } from "pino";
import { z } from "zod";
import { createLogger, type Logger } from "../log.js";
import { generateInstances } from "./instances.js";
import { FATES } from "./script.js";
import { startSimulator, type Simulator } from "./server.js";

const count = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

/** Options of `qrfleet simulator`; strings are accepted as a command-line parser hands them over. */
const commandSchema = z.object({
  /** @defaultValue 7788 */
  port: count(0, 65535).default(7788),
  /** @defaultValue "127.0.0.1" */
  host: z.string().min(1).default("127.0.0.1"),
  /** How many instances to generate. @defaultValue 20 */
  instances: count(0, 999_999).default(20),
  /** QR rotation period, ms. @defaultValue 20000 */
  rotationMs: count(10, 86_400_000).optional(),
  /** Scan window of one socket, ms. @defaultValue 100000 */
  windowMs: count(10, 86_400_000).optional(),
  /** @defaultValue "never" */
  fate: z.enum(FATES).optional(),
  /** For fate scan: ms from socket open to the scan. @defaultValue 30000 */
  scanAfterMs: count(0, 86_400_000).optional(),
  /** For fate flood: distinct QR frames each socket sends at once. @defaultValue 2000 */
  floodFrames: count(1, 1_000_000).optional(),
  /** For fate flood: frames sent per turn of the event loop. @defaultValue 100 */
  floodBurst: count(1, 100_000).optional(),
  /** Print the instances as JSON instead of a table. @defaultValue false */
  json: z.boolean().default(false),
  /** Seed of the generated tokens. @defaultValue 1 */
  seed: z.union([z.number(), z.string()]).default(1),
  /** @defaultValue "1101" */
  idPrefix: z.string().default("1101"),
  /** false: reuse a small pool of pre-rendered QR images (for thousands of sockets). @defaultValue true */
  uniqueImages: z.boolean().default(true),
  /** getStateInstance answers after this many ms. @defaultValue 0 */
  stateLatencyMs: count(0, 60_000).optional(),
  /** Where the fake provider POSTs stateInstanceChanged. */
  webhookUrl: z.string().optional(),
  /** The partner token of an account holding every instance (`qrfleet instance sync` against it). */
  partnerToken: z.string().optional(),
});

export type SimulatorCommandOptions = z.input<typeof commandSchema>;

export interface SimulatorCommandIo {
  /** Where the table or JSON goes. @defaultValue process.stdout */
  out?: (text: string) => void;
  /** Stops the simulator as SIGINT/SIGTERM would. */
  signal?: AbortSignal;
  /** @defaultValue a logger on stderr, so `--json` output on stdout stays parseable */
  log?: Logger;
}

function flag(key: PropertyKey): string {
  return `--${String(key).replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
}

/** `qrfleet simulator`: starts the fake provider, prints its instances, runs until SIGINT/SIGTERM. */
export async function simulatorCommand(raw: SimulatorCommandOptions, io: SimulatorCommandIo = {}): Promise<void> {
  const parsed = commandSchema.safeParse(raw);
  if (!parsed.success) {
    throw new Error(parsed.error.issues.map((i) => `${flag(i.path[0] ?? "options")}: ${i.message}`).join("; "));
  }
  const opts = parsed.data;
  const out = io.out ?? ((text: string) => void process.stdout.write(text));
  const simulator = await startSimulator({
    log: io.log ?? createLogger({ name: "qrfleet-simulator", destination: pino.destination({ fd: 2, sync: false }) }),
    host: opts.host,
    port: opts.port,
    uniqueImages: opts.uniqueImages,
    webhookUrl: opts.webhookUrl,
    partnerToken: opts.partnerToken,
    defaults: {
      fate: opts.fate, rotationMs: opts.rotationMs, scanWindowMs: opts.windowMs, scanAfterMs: opts.scanAfterMs,
      floodFrames: opts.floodFrames, floodBurst: opts.floodBurst, stateLatencyMs: opts.stateLatencyMs,
    },
    instances: generateInstances(opts.instances, { idPrefix: opts.idPrefix, seed: opts.seed }),
  });
  out(opts.json ? asJson(simulator) : asTable(simulator, opts.fate ?? "never"));
  await stopped(io.signal);
  await simulator.close();
  if (!opts.json) out("simulator stopped\n");
}

function asJson(simulator: Simulator): string {
  return `${JSON.stringify({ url: simulator.url, instances: simulator.addresses() }, null, 2)}\n`;
}

function asTable(simulator: Simulator, fate: string): string {
  const rows = simulator.addresses().map((a) => [a.apiUrl, a.idInstance, a.token]);
  const header = ["apiUrl", "idInstance", "apiTokenInstance"];
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c]!.length)));
  const line = (cells: string[]) => cells.map((cell, c) => cell.padEnd(widths[c]!)).join("  ").trimEnd();
  return [
    `GREEN-API simulator on ${simulator.url} (fate ${fate}); Ctrl-C stops it`,
    ...(simulator.partner.token === null
      ? []
      : [`partner account of every instance: GREENAPI_PARTNER_API_URL=${simulator.url} GREENAPI_PARTNER_TOKEN=${simulator.partner.token}`]),
    "",
    line(header),
    ...rows.map(line),
    "",
  ].join("\n");
}

function stopped(signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      process.off("SIGINT", done);
      process.off("SIGTERM", done);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    if (signal?.aborted) return done();
    process.once("SIGINT", done);
    process.once("SIGTERM", done);
    signal?.addEventListener("abort", done, { once: true });
  });
}

/** The same command from raw arguments, e.g. `--port 7788 --instances 20 --fate scan --json`. */
export async function runSimulatorCli(args: string[], io: SimulatorCommandIo = {}): Promise<void> {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args,
      strict: true,
      options: {
        port: { type: "string" },
        host: { type: "string" },
        instances: { type: "string" },
        "rotation-ms": { type: "string" },
        "window-ms": { type: "string" },
        fate: { type: "string" },
        "scan-after-ms": { type: "string" },
        "flood-frames": { type: "string" },
        "flood-burst": { type: "string" },
        "state-latency-ms": { type: "string" },
        json: { type: "boolean" },
        seed: { type: "string" },
        "id-prefix": { type: "string" },
        "pool-images": { type: "boolean" },
        "webhook-url": { type: "string" },
        "partner-token": { type: "string" },
      },
    }));
  } catch (err) {
    throw new Error(`qrfleet simulator: ${(err as Error).message}`);
  }
  const camel = Object.fromEntries(
    Object.entries(values).map(([k, v]) => [k.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase()), v]),
  );
  const { poolImages, ...rest } = camel;
  await simulatorCommand({ ...rest, uniqueImages: poolImages !== true } as SimulatorCommandOptions, io);
}
