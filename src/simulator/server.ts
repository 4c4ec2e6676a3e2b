import { createServer, STATUS_CODES, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Duplex } from "node:stream";
import { WebSocketServer, type WebSocket } from "ws";
import { z } from "zod";
import { createLogger, type Logger } from "../log.js";
import { SimConnection } from "./connection.js";
import { pooledImages, taggedImages, uniqueImages, type ImageMode, type ImageSource } from "./images.js";
import {
  SIM_STATES, SimulatedProvider, type InstanceDefinition, type SimCounters, type SimState, type SimulatorHooks,
} from "./provider.js";
import { isPartnerPath, SimulatedPartner, type SimPartnerControls } from "./partner.js";
import { handleRest, parseInstancePath } from "./rest.js";
import {
  DEFAULT_SCRIPT, describeIssues, partialScriptSchema, resolveScript, stateStepsSchema, type Script, type StateStep,
} from "./script.js";
import { CallGaps, settingsPatchSchema, type SimSettings } from "./settings.js";
import { WebhookSender } from "./webhook.js";

const webhookUrlSchema = z.url({ protocol: /^https?$/ });

const optionsSchema = z.strictObject({
  /** Listen address. @defaultValue "127.0.0.1" */
  host: z.string().min(1).default("127.0.0.1"),
  /** Listen port; 0 picks a free one. @defaultValue 0 */
  port: z.number().int().min(0).max(65535).default(0),
  /** Script fields every instance gets unless it says otherwise. */
  defaults: partialScriptSchema.default({}),
  instances: z
    .array(partialScriptSchema.extend({ idInstance: z.string(), token: z.string(), states: stateStepsSchema.optional() }))
    .default([]),
  /**
   * The webhookUrl every instance starts with (stateWebhook on): where `stateInstanceChanged`
   * webhooks go until a setSettings call changes it. Without it instances start with none.
   */
  webhookUrl: webhookUrlSchema.optional(),
  /**
   * Least ms between two calls of one method to one instance, per method: the provider's limit of
   * one a second, less some network jitter. A sooner call is answered 429 with Retry-After.
   * @defaultValue { getSettings: 950, setSettings: 950 }
   */
  rateLimitMs: z.record(z.string().regex(/^[A-Za-z]+$/), z.number().int().min(0).max(3_600_000)).default({ getSettings: 950, setSettings: 950 }),
  /** Bound of one webhook POST, ms. @defaultValue 5000 */
  webhookTimeoutMs: z.number().int().min(1).max(60_000).default(5_000),
  /** A fresh PNG per rotation (tests, demo), or a pre-rendered pool: the same as imageMode "unique" or "pool". @defaultValue true */
  uniqueImages: z.boolean().default(true),
  /**
   * Where QR images come from; overrides uniqueImages when given. "unique" renders each one;
   * "pool" reuses pre-rendered ones; "tagged" reuses the pool's pictures with unique bytes per
   * frame (a text chunk), for the benchmark, which matches deliveries to frames by sha256.
   */
  imageMode: z.enum(["unique", "pool", "tagged"]).optional(),
  /** Images in the pool of modes "pool" and "tagged". @defaultValue 32 */
  imagePoolSize: z.number().int().min(2).max(10_000).default(32),
  /** The partner token of an account holding every instance (`/partner/getInstances`); none without it. */
  partnerToken: z.string().regex(/^[A-Za-z0-9._~-]{1,256}$/).optional(),
  /** getInstances names each instance's host (`apiUrl`), which the documented answer does not. @defaultValue false */
  partnerListsApiUrl: z.boolean().default(false),
});

export type SimulatorOptions = z.input<typeof optionsSchema> & {
  defaults?: Partial<Script>;
  instances?: InstanceDefinition[];
  /** Defaults to a logger on stdout at info. */
  log?: Logger;
  /** Observers of every frame sent and every socket opened or closed. */
  hooks?: SimulatorHooks;
};

export interface SimulatorStats extends SimCounters {
  instances: number;
  openSockets: number;
  webhooksSent: number;
  webhooksFailed: number;
  images: ReturnType<ImageSource["stats"]>;
}

export interface Simulator {
  /** e.g. http://127.0.0.1:40123: the `apiUrl` of every simulated instance. */
  readonly url: string;
  readonly port: number;
  /** Cuts every socket, clears every timer, aborts webhooks and stops listening. */
  close(): Promise<void>;
  /** Adds an instance, or replaces one with the same id. */
  define(instance: InstanceDefinition): void;
  /** Changes an instance's script for sockets opened from now on. */
  script(idInstance: string, script: Partial<Script>): void;
  state(idInstance: string): SimState;
  /** Sets the state as the provider would (a webhook follows a change; authorized ends open sessions); stops a timeline. */
  setState(idInstance: string, state: SimState): void;
  /** Plays a state timeline, e.g. `starting` for 500 ms then `authorized`; each change is sent as the provider's webhook. */
  playStates(idInstance: string, steps: StateStep[]): void;
  /** `reboot` calls this instance has answered. */
  reboots(idInstance: string): number;
  /** What getSettings answers for the instance now (a copy). */
  settings(idInstance: string): SimSettings;
  /** Changes settings behind everyone's back, as users see the provider do: no call, no reboot. */
  changeSettings(idInstance: string, patch: Partial<SimSettings>): void;
  /** The text encoded in the QR shown now, or null when none is. */
  currentQr(idInstance: string): string | null;
  /** The PNG shown now, or null. */
  currentPng(idInstance: string): Buffer | null;
  /** Socket connections this instance has accepted so far. */
  connections(idInstance: string): number;
  /** Sockets open now, over all instances. */
  openSockets(): number;
  /** Every instance as an address a client can use. */
  addresses(): Array<{ apiUrl: string; idInstance: string; token: string }>;
  stats(): SimulatorStats;
  /** Where webhooks go from now on, each POST to the next URL in turn; none: no more webhooks. */
  webhookTargets(urls: readonly string[]): void;
  /** No socket rotates, times out, drops or is scanned any more; sockets stay open (see SimulatedProvider.freeze). */
  freeze(): void;
  /** The partner account: what getInstances lists of each instance, and how it answers. */
  readonly partner: SimPartnerControls;
}

export async function startSimulator(options: SimulatorOptions = {}): Promise<Simulator> {
  const { log: given, hooks, ...rest } = options;
  const parsed = optionsSchema.safeParse(rest);
  if (!parsed.success) throw new Error(`invalid simulator options: ${describeIssues(parsed.error)}`);
  const opts = parsed.data;
  const log = (given ?? createLogger({ name: "qrfleet-simulator" })).child({ component: "simulator" });
  const defaults = resolveScript(DEFAULT_SCRIPT, opts.defaults);
  const images = await imageSource(opts.imageMode ?? (opts.uniqueImages ? "unique" : "pool"), opts.imagePoolSize);
  const webhooks = new WebhookSender(log, opts.webhookTimeoutMs);
  const provider = new SimulatedProvider(defaults, images, log, webhooks, hooks, opts.webhookUrl ?? "");
  const gaps = new CallGaps(opts.rateLimitMs);
  for (const instance of opts.instances) provider.define(instance);

  const partner = new SimulatedPartner(provider, opts.partnerToken ?? null, opts.partnerListsApiUrl);
  const server = createServer((req, res) => void (isPartnerPath(req.url) ? partner.handle(req, res) : handleRest(provider, gaps, req, res)));
  // Bounded so a stuck client cannot hold a request forever; a QR poll is a few ms.
  server.requestTimeout = 15_000;
  server.headersTimeout = 10_000;
  // REST and websocket alike; keep-alive clients reuse a few connections for many calls.
  server.on("connection", () => void (provider.counters.httpConnections += 1));
  const wss = new WebSocketServer({ noServer: true, clientTracking: false, perMessageDeflate: false, maxPayload: 64 * 1024 });
  let closing = false;
  server.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on("error", () => socket.destroy());
    const status = closing ? 503 : upgradeStatus(provider, req.url);
    if (status !== 101) {
      provider.counters.rejectedUpgrades += 1;
      return refuse(socket, status);
    }
    const path = parseInstancePath(req.url)!;
    wss.handleUpgrade(req, socket, head, (ws) => accept(provider, path.idInstance, ws));
  });
  await listen(server, opts.host, opts.port);
  const port = (server.address() as AddressInfo).port;
  const url = `http://${opts.host.includes(":") ? `[${opts.host}]` : opts.host}:${port}`;
  partner.apiUrl = url;

  return {
    url,
    port,
    async close() {
      if (closing) return;
      closing = true;
      provider.close();
      await webhooks.close();
      wss.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
    define: (instance) => void provider.define(instance),
    script: (id, partial) => provider.script(id, partial),
    state: (id) => provider.require(id).state,
    setState: (id, state) => {
      if (!SIM_STATES.includes(state)) throw new Error(`simulator: unknown state "${String(state)}"`);
      provider.setState(provider.require(id), state);
    },
    playStates: (id, steps) => {
      const parsed = stateStepsSchema.safeParse(steps);
      if (!parsed.success) throw new Error(`simulator: invalid state timeline: ${describeIssues(parsed.error)}`);
      provider.playStates(provider.require(id), parsed.data);
    },
    reboots: (id) => provider.require(id).reboots,
    settings: (id) => ({ ...provider.require(id).settings }),
    changeSettings: (id, patch) => {
      const parsed = settingsPatchSchema.safeParse(patch);
      if (!parsed.success) throw new Error(`simulator: invalid settings: ${describeIssues(parsed.error)}`);
      Object.assign(provider.require(id).settings, parsed.data);
    },
    currentQr: (id) => provider.require(id).shown?.image.content ?? null,
    currentPng: (id) => {
      const shown = provider.require(id).shown;
      return shown ? Buffer.from(shown.image.base64, "base64") : null;
    },
    connections: (id) => provider.require(id).connections,
    openSockets: () => provider.sockets.size,
    addresses: () => [...provider.instances.values()].map((i) => ({ apiUrl: url, idInstance: i.idInstance, token: i.token })),
    stats: () => ({
      ...provider.counters,
      instances: provider.instances.size,
      openSockets: provider.sockets.size,
      webhooksSent: webhooks.sent,
      webhooksFailed: webhooks.failed,
      images: images.stats(),
    }),
    webhookTargets: (urls) => {
      const bad = urls.find((u) => !webhookUrlSchema.safeParse(u).success);
      if (bad !== undefined) throw new Error("simulator: a webhook target must be an http(s) URL");
      webhooks.retarget(urls);
    },
    freeze: () => provider.freeze(),
    partner: partner.controls(),
  };
}

function imageSource(mode: ImageMode, poolSize: number): Promise<ImageSource> {
  if (mode === "unique") return Promise.resolve(uniqueImages());
  return mode === "pool" ? pooledImages(poolSize) : taggedImages(poolSize);
}

/** 101 to accept, or the HTTP status the provider refuses the upgrade with. */
function upgradeStatus(provider: SimulatedProvider, rawUrl: string | undefined): number {
  const path = parseInstancePath(rawUrl);
  if (!path || path.method !== "scanqrcode") return 404;
  const auth = provider.authenticate(path.idInstance, path.token);
  return auth.ok ? 101 : auth.status;
}

function accept(provider: SimulatedProvider, idInstance: string, ws: WebSocket): void {
  const instance = provider.instances.get(idInstance);
  if (!instance) return void ws.terminate();
  instance.connections += 1;
  provider.counters.connections += 1;
  if (instance.open.size > 0) provider.counters.overlappingSessions += 1;
  new SimConnection(provider, instance, ws, instance.connections).start();
}

function refuse(socket: Duplex, status: number): void {
  const reason = STATUS_CODES[status] ?? "Error";
  socket.once("finish", () => socket.destroy());
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Type: text/plain\r\n` +
      `Content-Length: ${Buffer.byteLength(reason)}\r\n\r\n${reason}`,
  );
}

function listen(server: Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    // A deep backlog: the benchmark opens thousands of sockets at once.
    server.listen({ host, port, backlog: 4096 }, () => {
      server.off("error", reject);
      resolve();
    });
  });
}
