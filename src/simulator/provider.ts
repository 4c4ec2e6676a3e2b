import { INSTANCE_STATES } from "../greenapi/types.js";
import type { Logger } from "../log.js";
import type { ImageSource, QrImage } from "./images.js";
import { resolveScript, type Script, type StateStep } from "./script.js";
import { defaultSettings, type SimSettings } from "./settings.js";
import type { WebhookSender } from "./webhook.js";

/** The states the simulator can be put in: those getStateInstance documents. */
export type SimState = (typeof INSTANCE_STATES)[number];
export { INSTANCE_STATES as SIM_STATES };

/** What the provider does to an open QR socket (connection.ts). */
export interface OpenSocket {
  /** Stops its timers; it stays open and silent. */
  freeze(): void;
  /** The phone scanned: the socket says so, with the account. */
  linked(accountData: unknown): void;
  /** Drops it, as a network fault would. */
  cut(): void;
}

export interface InstanceDefinition extends Partial<Script> {
  idInstance: string;
  /** apiTokenInstance of the fake instance. */
  token: string;
  /** A state timeline played from the definition on (see SimulatedProvider.playStates). @defaultValue none */
  states?: StateStep[];
}

export interface SimInstance {
  readonly idInstance: string;
  token: string;
  script: Script;
  state: SimState;
  /** `<phone>@c.us` of the account that last linked, if any. */
  wid: string | null;
  /** Socket connections accepted so far (numbered from 1). */
  connections: number;
  readonly open: Set<OpenSocket>;
  /** The image shown now, and whether a socket or a REST snapshot shows it. */
  shown: { image: QrImage; by: OpenSocket | "rest"; at: number } | null;
  restSnapshots: number;
  /** A pending link from pairing or REST polling; one per instance. */
  linkTimer: NodeJS.Timeout | null;
  /** The next step of a state timeline (or of a reboot), if one is playing. */
  stateTimer: NodeJS.Timeout | null;
  /** `reboot` calls answered. */
  reboots: number;
  /** What getSettings answers; setState sends the provider's webhook where these say. */
  settings: SimSettings;
}

export interface SimCounters {
  connections: number;
  /** Sockets accepted while another socket of the same instance was open (the provider allows one). */
  overlappingSessions: number;
  rejectedUpgrades: number;
  qrFramesSent: number;
  scans: number;
  timeouts: number;
  drops: number;
  restRequests: number;
  /** QR frames sent by the `flood` fate (also counted in qrFramesSent). */
  floodFrames: number;
  /** `reboot` calls answered, over all instances. */
  reboots: number;
  /** REST calls answered 429 because they came sooner than the provider's rate limit allows. */
  rateLimited: number;
  /** `setSettings` calls answered `saveSettings: true`, applied or not. */
  settingsSaved: number;
  /** getStateInstance calls answered (after the script's stateLatencyMs). */
  stateAnswers: number;
  /** TCP connections the REST server accepted: with keep-alive clients, far fewer than restRequests. */
  httpConnections: number;
}

/** A `qrCode` frame the simulator handed to a socket. */
export interface SentQrFrame {
  idInstance: string;
  /** 1-based connection number of the instance. */
  connection: number;
  /** 1-based rotation of that connection. */
  rotation: number;
  /** Hex sha256 of the PNG bytes in the frame. */
  sha256: string;
  /** Date.now() when the frame was handed to the socket. */
  at: number;
}

export interface SocketEvent {
  idInstance: string;
  connection: number;
  at: number;
}

/**
 * Observers of what the simulator sends, called synchronously as it happens: the benchmark
 * records when each frame left, to measure when the same image reaches an operator.
 */
export interface SimulatorHooks {
  qrFrame?(frame: SentQrFrame): void;
  /** A QR socket was accepted, before its first frame. */
  socketOpened?(socket: SocketEvent): void;
  /** A QR socket's connection has closed, whoever closed it. */
  socketClosed?(socket: SocketEvent): void;
  /** A REST call of an instance was accepted (its token matched), before it is answered. */
  restCall?(call: { idInstance: string; method: string; at: number }): void;
  /** A getStateInstance answer is about to be sent (after the script's stateLatencyMs). */
  stateAnswered?(answer: { idInstance: string; state: SimState; at: number }): void;
}

export type AuthResult = { ok: true; instance: SimInstance } | { ok: false; status: 401 | 404 };

/** The simulated provider's instances and their state; sockets and REST both act through it. */
export class SimulatedProvider {
  readonly instances = new Map<string, SimInstance>();
  readonly sockets = new Set<OpenSocket>();
  readonly counters: SimCounters = {
    connections: 0,
    overlappingSessions: 0,
    rejectedUpgrades: 0,
    qrFramesSent: 0,
    scans: 0,
    timeouts: 0,
    drops: 0,
    restRequests: 0,
    floodFrames: 0,
    reboots: 0,
    rateLimited: 0,
    settingsSaved: 0,
    stateAnswers: 0,
    httpConnections: 0,
  };
  /** Set by freeze(): sockets stay open, but no timer of theirs runs again. */
  frozen = false;

  constructor(
    readonly defaults: Script,
    readonly images: ImageSource,
    readonly log: Logger,
    private readonly webhooks: WebhookSender,
    readonly hooks: SimulatorHooks = {},
    /** The webhookUrl (with stateWebhook on) every instance starts with; "" for none. */
    private readonly initialWebhookUrl = "",
  ) {}

  /** Calls an observer; one that throws is logged, never allowed to break a socket. */
  observe<K extends keyof SimulatorHooks>(name: K, payload: Parameters<NonNullable<SimulatorHooks[K]>>[0]): void {
    const hook = this.hooks[name] as ((p: typeof payload) => void) | undefined;
    if (!hook) return;
    try {
      hook(payload);
    } catch (err) {
      this.log.error({ err, hook: name }, "simulator hook failed");
    }
  }

  /**
   * Stops the clock of every socket, open now or opened later: no rotation, timeout, drop or
   * scan happens any more, and sockets stay open. The benchmark freezes the provider before it
   * drains, so what arrives afterwards is only what was already sent.
   */
  freeze(): void {
    this.frozen = true;
    for (const connection of this.sockets) connection.freeze();
    for (const instance of this.instances.values()) {
      this.cancelLink(instance);
      this.stopTimeline(instance);
    }
  }

  /** Adds an instance, or replaces one (its open sockets are cut). */
  define(def: InstanceDefinition): SimInstance {
    const { idInstance, token, states, ...script } = def;
    if (!/^\d{1,15}$/.test(idInstance)) throw new Error(`invalid idInstance "${idInstance}": digits only`);
    if (!/^[\x21-\x7e]{1,200}$/.test(token) || token.includes("/")) throw new Error(`invalid token for ${idInstance}`);
    // Instances with no script of their own share the defaults: a fleet of 100,000 holds one copy.
    const own = Object.values(script).some((v) => v !== undefined);
    const resolved = own ? resolveScript(this.defaults, script) : this.defaults;
    const previous = this.instances.get(idInstance);
    if (previous) this.retire(previous);
    const instance: SimInstance = {
      idInstance,
      token,
      script: resolved,
      state: resolved.fate === "authorized" ? "authorized" : "notAuthorized",
      wid: resolved.fate === "authorized" ? `${resolved.phone}@c.us` : null,
      connections: 0,
      open: new Set(),
      shown: null,
      restSnapshots: 0,
      linkTimer: null,
      stateTimer: null,
      reboots: 0,
      settings: {
        ...defaultSettings(),
        webhookUrl: this.initialWebhookUrl,
        webhookUrlToken: resolved.webhookToken ?? "",
        stateWebhook: this.initialWebhookUrl === "" ? "no" : "yes",
      },
    };
    this.instances.set(idInstance, instance);
    if (states) this.playStates(instance, states);
    return instance;
  }

  require(idInstance: string): SimInstance {
    const instance = this.instances.get(idInstance);
    if (!instance) throw new Error(`simulator: no instance ${idInstance}`);
    return instance;
  }

  authenticate(idInstance: string, token: string): AuthResult {
    const instance = this.instances.get(idInstance);
    if (!instance) return { ok: false, status: 404 };
    if (instance.script.fate === "wrong_token" || token !== instance.token) return { ok: false, status: 401 };
    return { ok: true, instance };
  }

  /** Changes the script for sockets opened from now on; fate `authorized` also links the instance. */
  script(idInstance: string, partial: Partial<Script>): void {
    const instance = this.require(idInstance);
    instance.script = resolveScript(instance.script, partial);
    if (partial.webhookToken !== undefined) instance.settings.webhookUrlToken = partial.webhookToken;
    if (partial.fate === "authorized") this.link(instance, instance.script.phone);
  }

  /** Sets the state as the provider would; a state set from outside a timeline stops the timeline. */
  setState(instance: SimInstance, state: SimState, fromTimeline = false): void {
    if (!fromTimeline) this.stopTimeline(instance);
    if (instance.state === state) return;
    instance.state = state;
    if (state !== "notAuthorized") this.cancelLink(instance);
    const { webhookUrl, webhookUrlToken, stateWebhook } = instance.settings;
    this.webhooks.send(stateWebhook === "yes" ? webhookUrl : "", {
      idInstance: instance.idInstance,
      wid: instance.wid ?? `${instance.script.phone}@c.us`,
      stateInstance: state,
      webhookToken: webhookUrlToken,
    });
    // A phone that links while a QR socket is open ends that session, as a scan would.
    if (state === "authorized") {
      for (const connection of [...instance.open]) connection.linked(this.accountData(instance));
      this.hide(instance);
    }
  }

  /**
   * Plays a state timeline: each step's state now, the next after its `forMs`, each change sent
   * as the provider's webhook. It replaces a timeline already playing.
   */
  playStates(instance: SimInstance, steps: readonly StateStep[]): void {
    this.stopTimeline(instance);
    const [step, ...rest] = steps;
    if (!step) return;
    this.setState(instance, step.state, true);
    if (rest.length === 0 || step.forMs === undefined || this.frozen) return;
    instance.stateTimer = setTimeout(() => {
      instance.stateTimer = null;
      this.playStates(instance, rest);
    }, step.forMs);
  }

  /** The `reboot` call: `starting` for the script's rebootMs, then its rebootTo state. */
  reboot(instance: SimInstance): void {
    instance.reboots += 1;
    this.counters.reboots += 1;
    const { rebootMs, rebootTo } = instance.script;
    const previous = instance.state === "starting" ? "authorized" : instance.state;
    const after = rebootTo === "previous" ? previous : rebootTo;
    this.playStates(instance, rebootMs > 0 ? [{ state: "starting", forMs: rebootMs }, { state: after }] : [{ state: after }]);
  }

  /**
   * The `setSettings` call: the change is kept (unless the script says the provider ignores it)
   * and the instance restarts, `starting` for settingsRebootMs, then back in the state it was in.
   */
  saveSettings(instance: SimInstance, patch: Partial<SimSettings>): void {
    this.counters.settingsSaved += 1;
    if (instance.script.settingsApply === "apply") Object.assign(instance.settings, patch);
    const { settingsRebootMs } = instance.script;
    const back = instance.state === "starting" ? "authorized" : instance.state;
    if (settingsRebootMs > 0) this.playStates(instance, [{ state: "starting", forMs: settingsRebootMs }, { state: back }]);
  }

  /** The phone `<phone>` linked the instance (a scan, a pairing code, a REST poller's scan). */
  link(instance: SimInstance, phone: string): void {
    if (instance.state === "authorized") return;
    instance.wid = `${phone}@c.us`;
    this.counters.scans += 1;
    // Users report settings that change by themselves after a re-authorization.
    if (instance.script.settingsOnLink) Object.assign(instance.settings, instance.script.settingsOnLink);
    this.setState(instance, "authorized");
  }

  scheduleLink(instance: SimInstance, afterMs: number, phone: string): void {
    this.cancelLink(instance);
    if (this.frozen) return;
    instance.linkTimer = setTimeout(() => {
      instance.linkTimer = null;
      this.link(instance, phone);
    }, afterMs);
  }

  show(instance: SimInstance, image: QrImage, by: OpenSocket | "rest"): void {
    instance.shown = { image, by, at: Date.now() };
  }

  /** Forgets the shown image if `by` (or anyone, when omitted) was showing it. */
  hide(instance: SimInstance, by?: OpenSocket): void {
    if (!by || instance.shown?.by === by) instance.shown = null;
  }

  accountData(instance: SimInstance): unknown {
    const wid = instance.wid ?? `${instance.script.phone}@c.us`;
    const account = { wid, phone: wid.replace(/@c\.us$/, ""), name: "qrfleet simulator", typeAccount: "whatsapp" };
    return instance.script.accountDataFormat === "object" ? account : JSON.stringify(account);
  }

  /** Cuts every socket and clears every timer. */
  close(): void {
    for (const instance of this.instances.values()) this.retire(instance);
    for (const connection of [...this.sockets]) connection.cut();
  }

  private retire(instance: SimInstance): void {
    this.cancelLink(instance);
    this.stopTimeline(instance);
    for (const connection of [...instance.open]) connection.cut();
    instance.shown = null;
  }

  private stopTimeline(instance: SimInstance): void {
    if (instance.stateTimer) clearTimeout(instance.stateTimer);
    instance.stateTimer = null;
  }

  private cancelLink(instance: SimInstance): void {
    if (instance.linkTimer) clearTimeout(instance.linkTimer);
    instance.linkTimer = null;
  }
}
