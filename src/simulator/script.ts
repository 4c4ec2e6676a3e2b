import { z } from "zod";
import { INSTANCE_STATES } from "../greenapi/types.js";
import { settingsPatchSchema, type SimSettings } from "./settings.js";

/** What one simulated instance does when a QR websocket opens on it. */
export const FATES = [
  "scan", // rotates, then is scanned scanAfterMs after the socket opens (from connection scanOnConnection on)
  "never", // rotates until the scan window ends, then `timeout`
  "authorized", // the instance is linked: every socket gets `alreadyLogged`
  "provider_error", // an `error` frame, then the socket closes
  "wrong_token", // every token is refused with 401, on REST and on the upgrade
  "garbage", // one bad frame (see `garbage`), then continues like `never`
  "drop", // rotates, then the TCP connection is destroyed after dropAfterMs, no terminal frame
  "silence", // the socket opens and nothing is ever sent
  "unknown_type", // one frame of type `unknownType`, then continues like `never`
  "flood", // floodFrames distinct QR frames as fast as it can (floodBurst a turn), then continues like `never`
] as const;
export type Fate = (typeof FATES)[number];

/**
 * The behaviour of one simulated instance. Durations are options so a test runs in
 * seconds; the defaults are the real provider's (rotation ~20 s, window 100 s).
 * A changed script applies to sockets opened after the change.
 */
export interface Script {
  /** @defaultValue "never" */
  fate: Fate;
  /** Time between two QR images of one socket, ms. @defaultValue 20000 */
  rotationMs: number;
  /** Lifetime of one socket session before `timeout`, ms. @defaultValue 100000 */
  scanWindowMs: number;
  /** Fate `scan` (and pairing, and REST polling): delay before the phone links, ms. @defaultValue 30000 */
  scanAfterMs: number;
  /** Fate `scan`: the first connection number (1-based) that gets scanned; earlier ones time out. @defaultValue 1 */
  scanOnConnection: number;
  /** Digits of the phone that scans; its wid is `<phone>@c.us`. @defaultValue "79001234567" */
  phone: string;
  /** `accountData.message` as an object or as JSON text (the docs allow both). @defaultValue "object" */
  accountDataFormat: "object" | "json_text";
  /** Fate `garbage`: a frame that is not JSON, or a `qrCode` whose payload is not a PNG. @defaultValue "not_json" */
  garbage: "not_json" | "not_png";
  /** Fate `drop`: ms after the socket opens when the TCP connection is destroyed. @defaultValue 5000 */
  dropAfterMs: number;
  /** Fate `provider_error`: the text of the `error` frame. @defaultValue "simulated provider error" */
  errorMessage: string;
  /** Fate `unknown_type`: the type of the unexpected frame. @defaultValue "passkeyRequired" */
  unknownType: string;
  /** Fate `flood`: how many distinct QR frames the socket sends at once after it opens. @defaultValue 2000 */
  floodFrames: number;
  /** Fate `flood`: frames sent per turn of the simulator's event loop (all of them: as fast as the socket takes them). @defaultValue 100 */
  floodBurst: number;
  /** Sent back as `Authorization: Bearer <token>` on this instance's provider webhooks. @defaultValue none */
  webhookToken?: string;
  /** The `reboot` call: ms the instance then spends `starting` (0: none). @defaultValue 60000 */
  rebootMs: number;
  /**
   * The state a reboot ends in: "previous" is the state before it, except that a stuck `starting`
   * comes back `authorized` (a reboot is what unsticks a start). @defaultValue "previous"
   */
  rebootTo: (typeof INSTANCE_STATES)[number] | "previous";
  /** `setSettings` reboots the instance: ms it then spends `starting` before its state comes back (0: none). @defaultValue 5000 */
  settingsRebootMs: number;
  /** `setSettings` answers `saveSettings: true` and "apply"s the change, or "ignore"s it (a change that does not stick). @defaultValue "apply" */
  settingsApply: "apply" | "ignore";
  /** Settings the provider changes by itself each time a phone links the instance (a re-authorization). @defaultValue none */
  settingsOnLink?: Partial<SimSettings>;
  /** getStateInstance answers this many ms after the request arrived, like a provider that asks the phone. @defaultValue 0 */
  stateLatencyMs: number;
}

/** One step of a scripted state timeline: the state, and how long it lasts (the last step may last for ever). */
export interface StateStep {
  state: (typeof INSTANCE_STATES)[number];
  /** ms in this state before the next step; omitted on the last step. */
  forMs?: number;
}

const ms = z.number().int().min(0).max(24 * 3_600_000);

export const scriptSchema = z.strictObject({
  fate: z.enum(FATES),
  rotationMs: ms.min(10),
  scanWindowMs: ms.min(10),
  scanAfterMs: ms,
  scanOnConnection: z.number().int().min(1).max(1_000_000),
  phone: z.string().regex(/^\d{5,15}$/, "must be 5 to 15 digits"),
  accountDataFormat: z.enum(["object", "json_text"]),
  garbage: z.enum(["not_json", "not_png"]),
  dropAfterMs: ms,
  errorMessage: z.string().max(2000),
  unknownType: z.string().min(1).max(100),
  floodFrames: z.number().int().min(1).max(1_000_000),
  floodBurst: z.number().int().min(1).max(100_000),
  webhookToken: z.string().min(1).max(1000).optional(),
  rebootMs: ms,
  rebootTo: z.enum([...INSTANCE_STATES, "previous"] as const),
  settingsRebootMs: ms,
  settingsApply: z.enum(["apply", "ignore"]),
  settingsOnLink: settingsPatchSchema.optional(),
  stateLatencyMs: ms.max(60_000),
}) satisfies z.ZodType<Script>;

/** A state timeline: each step but the last has a duration. */
export const stateStepsSchema = z
  .array(z.strictObject({ state: z.enum(INSTANCE_STATES), forMs: ms.optional() }))
  .min(1)
  .max(1000)
  .refine((steps) => steps.slice(0, -1).every((s) => s.forMs !== undefined), "every step but the last needs forMs") satisfies z.ZodType<StateStep[]>;

export const partialScriptSchema = scriptSchema.partial();

export const DEFAULT_SCRIPT: Readonly<Script> = Object.freeze({
  fate: "never",
  rotationMs: 20_000,
  scanWindowMs: 100_000,
  scanAfterMs: 30_000,
  scanOnConnection: 1,
  phone: "79001234567",
  accountDataFormat: "object",
  garbage: "not_json",
  dropAfterMs: 5_000,
  errorMessage: "simulated provider error",
  unknownType: "passkeyRequired",
  floodFrames: 2000,
  floodBurst: 100,
  rebootMs: 60_000,
  rebootTo: "previous",
  settingsRebootMs: 5_000,
  settingsApply: "apply",
  stateLatencyMs: 0,
});

/** Merges partial scripts over a base, validating the result; throws a readable error. */
export function resolveScript(base: Readonly<Script>, ...parts: Array<Partial<Script> | undefined>): Script {
  const merged: Record<string, unknown> = { ...base };
  for (const part of parts) {
    for (const [key, value] of Object.entries(part ?? {})) {
      if (value !== undefined) merged[key] = value;
    }
  }
  const parsed = scriptSchema.safeParse(merged);
  if (!parsed.success) throw new Error(`invalid simulator script: ${describeIssues(parsed.error)}`);
  return parsed.data;
}

export function describeIssues(error: z.ZodError): string {
  return error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`).join("; ");
}
