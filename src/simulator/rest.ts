import { randomInt } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import type { IncomingMessage, ServerResponse } from "node:http";
import { z } from "zod";
import { qrFrame } from "./images.js";
import type { SimInstance, SimulatedProvider } from "./provider.js";
import { describeIssues } from "./script.js";
import { settingsAnswer, settingsPatchSchema, type CallGaps } from "./settings.js";

/** `/waInstance{idInstance}/{method}/{apiTokenInstance}`, the provider's address of every call. */
const INSTANCE_PATH = /^\/waInstance(\d{1,15})\/([A-Za-z]+)\/([^/]+)\/?$/;
const MAX_BODY_BYTES = 64 * 1024;

export interface InstancePath {
  idInstance: string;
  method: string;
  token: string;
}

export function parseInstancePath(rawUrl: string | undefined): InstancePath | null {
  const pathname = (rawUrl ?? "").split("?")[0] ?? "";
  const match = INSTANCE_PATH.exec(pathname);
  if (!match) return null;
  return { idInstance: match[1]!, method: match[2]!, token: match[3]! };
}

type Reply = { status: number; body: unknown } | { status: number; text: string };

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly retryAfterS?: number,
  ) {
    super(message);
  }
}

const pairingBody = z.object({
  phoneNumber: z
    .union([z.number().int().positive(), z.string()])
    .transform(String)
    .pipe(z.string().regex(/^\d{5,15}$/, "must be a phone number in international format, digits only")),
});

interface Call {
  provider: SimulatedProvider;
  instance: SimInstance;
  body: unknown;
}

const ROUTES: Record<string, { verb: "GET" | "POST"; handle: (call: Call) => Reply | Promise<Reply> }> = {
  getStateInstance: { verb: "GET", handle: stateOf },
  qr: { verb: "GET", handle: qrSnapshot },
  logout: {
    verb: "GET",
    handle: ({ provider, instance }) => {
      provider.setState(instance, "notAuthorized");
      return ok({ isLogout: true });
    },
  },
  reboot: {
    verb: "GET",
    handle: ({ provider, instance }) => {
      provider.reboot(instance);
      return ok({ isReboot: true });
    },
  },
  getAuthorizationCode: { verb: "POST", handle: pairingCode },
  getWaSettings: { verb: "GET", handle: ({ instance }) => ok(waSettings(instance)) },
  getSettings: { verb: "GET", handle: ({ instance }) => ok(settingsAnswer(instance.settings, instance.wid)) },
  setSettings: { verb: "POST", handle: saveSettings },
};

function saveSettings({ provider, instance, body }: Call): Reply {
  const parsed = settingsPatchSchema.safeParse(body);
  if (!parsed.success) throw new HttpError(400, describeIssues(parsed.error));
  provider.saveSettings(instance, parsed.data);
  return ok({ saveSettings: true });
}

/** The provider's account settings: the linked phone only while the instance is authorized. */
function waSettings(instance: SimInstance) {
  const wid = instance.wid ?? `${instance.script.phone}@c.us`;
  const phone = instance.state === "authorized" ? wid.replace(/@c\.us$/, "") : "";
  return { avatar: "", phone, stateInstance: instance.state, deviceId: `sim-${instance.idInstance}` };
}

/** The state as it is when the answer leaves, after the script's stateLatencyMs. */
async function stateOf({ provider, instance }: Call): Promise<Reply> {
  const latency = instance.script.stateLatencyMs;
  if (latency > 0) await sleep(latency);
  provider.counters.stateAnswers += 1;
  provider.observe("stateAnswered", { idInstance: instance.idInstance, state: instance.state, at: Date.now() });
  return ok({ stateInstance: instance.state });
}

function ok(body: unknown): Reply {
  return { status: 200, body };
}

/** Serves one REST call; never throws, whatever the request. */
export async function handleRest(provider: SimulatedProvider, gaps: CallGaps, req: IncomingMessage, res: ServerResponse): Promise<void> {
  provider.counters.restRequests += 1;
  try {
    reply(res, await route(provider, gaps, req));
  } catch (err) {
    const status = err instanceof HttpError ? err.status : 500;
    if (status === 500) provider.log.error({ err }, "simulator REST handler failed");
    if (status === 429) provider.counters.rateLimited += 1;
    const retryAfter: Record<string, string> = err instanceof HttpError && err.retryAfterS !== undefined ? { "retry-after": String(err.retryAfterS) } : {};
    reply(res, { status, body: { error: err instanceof HttpError ? err.message : "internal error" } }, retryAfter);
  }
}

async function route(provider: SimulatedProvider, gaps: CallGaps, req: IncomingMessage): Promise<Reply> {
  const path = parseInstancePath(req.url);
  const target = path ? ROUTES[path.method] : undefined;
  if (!path || !target) throw new HttpError(404, "not found");
  const auth = provider.authenticate(path.idInstance, path.token);
  if (!auth.ok) throw new HttpError(auth.status, auth.status === 401 ? "unauthorized" : "instance not found");
  if (req.method !== target.verb) throw new HttpError(405, `use ${target.verb}`);
  const turn = gaps.take(path.idInstance, path.method);
  if (!turn.ok) throw new HttpError(429, "Too Many Requests", turn.retryAfterS);
  provider.observe("restCall", { idInstance: path.idInstance, method: path.method, at: Date.now() });
  const body = target.verb === "POST" ? await readJson(req) : undefined;
  return target.handle({ provider, instance: auth.instance, body });
}

function reply(res: ServerResponse, r: Reply, headers: Record<string, string> = {}): void {
  if (res.headersSent) return;
  const isText = "text" in r;
  const payload = isText ? r.text : JSON.stringify(r.body);
  res.writeHead(r.status, {
    ...headers,
    "content-type": isText ? "text/html" : "application/json",
    "content-length": Buffer.byteLength(payload),
  });
  res.end(payload);
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new HttpError(413, "body too large");
    chunks.push(chunk);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString("utf8")) as unknown;
  } catch {
    throw new HttpError(400, "body is not JSON");
  }
}

/**
 * One `{type, message}` snapshot. While a socket rotates, its current image; otherwise an
 * image of the REST poller's own, kept for one rotation period like the socket's would be.
 */
async function qrSnapshot({ provider, instance }: Call): Promise<Reply> {
  if (instance.state === "authorized") {
    return ok({ type: "alreadyLogged", message: "instance account already authorized" });
  }
  const { fate, garbage, errorMessage, rotationMs, scanAfterMs, phone } = instance.script;
  if (fate === "provider_error") return ok({ type: "error", message: errorMessage });
  if (fate === "garbage" && garbage === "not_json") return { status: 200, text: "<html>502 Bad Gateway</html>" };
  if (fate === "garbage") {
    return { status: 200, text: qrFrame(Buffer.from("this is not a PNG image").toString("base64")).toString() };
  }
  // A person scans a QR polled over REST just as one shown from a socket.
  if (fate === "scan" && !instance.linkTimer) provider.scheduleLink(instance, scanAfterMs, phone);
  const shown = instance.shown;
  const fresh = shown && (shown.by !== "rest" || Date.now() - shown.at < rotationMs);
  if (shown && fresh) return ok({ type: "qrCode", message: shown.image.base64 });
  instance.restSnapshots += 1;
  const image = await provider.images.next({
    idInstance: instance.idInstance,
    connection: 0,
    rotation: instance.restSnapshots,
  });
  provider.show(instance, image, "rest");
  return ok({ type: "qrCode", message: image.base64 });
}

function pairingCode({ provider, instance, body }: Call): Reply {
  const parsed = pairingBody.safeParse(body);
  if (!parsed.success) throw new HttpError(400, describeIssues(parsed.error));
  // The provider gives a code only to an instance that is not authorized.
  if (instance.state === "authorized") return ok({ status: false, code: "" });
  if (instance.script.fate === "scan") {
    provider.scheduleLink(instance, instance.script.scanAfterMs, parsed.data.phoneNumber);
  }
  return ok({ status: true, code: `${letters(4)}-${letters(4)}` });
}

function letters(n: number): string {
  let out = "";
  for (let i = 0; i < n; i += 1) out += "ABCDEFGHJKLMNPQRSTUVWXYZ"[randomInt(24)];
  return out;
}
