import type { IncomingMessage, ServerResponse } from "node:http";
import type { SimulatedProvider } from "./provider.js";

/**
 * The partner API of a simulated account: `GET /partner/getInstances/{partnerToken}` lists every
 * instance the simulator has, in the shape GREEN-API documents. Like the real one it answers a
 * refusal with HTTP 200 and `{ code, description }`, and it can be told to answer garbage.
 */

/** `/partner/{method}/{partnerToken}` */
const PARTNER_PATH = /^\/partner\/([A-Za-z]+)\/([^/?#]*)\/?$/;

/**
 * How getInstances answers: the listing; a body that is not JSON; an object that is neither a
 * listing nor an error; the listing with an entry that has no readable idInstance; a 200 with code 429.
 */
export const PARTNER_ANSWERS = ["list", "not_json", "wrong_shape", "entry_without_id", "busy"] as const;
export type PartnerAnswer = (typeof PARTNER_ANSWERS)[number];

/** What getInstances says of one instance, beside its id and token. */
export interface PartnerEntryPatch {
  name?: string;
  /** @defaultValue "whatsapp" */
  typeInstance?: string;
  /** Listed with `deleted: true` and a deletion time. */
  deleted?: boolean;
  /** false: left out of the listing altogether. @defaultValue true */
  listed?: boolean;
}

export interface SimPartnerControls {
  /** The partner token getInstances accepts, or null when the simulator has no partner account. */
  readonly token: string | null;
  entry(idInstance: string, patch: PartnerEntryPatch): void;
  answer(mode: PartnerAnswer): void;
  /** getInstances calls served so far, whatever their token. */
  calls(): number;
}

interface Entry {
  name: string;
  typeInstance: string;
  deleted: boolean;
  listed: boolean;
  timeCreated: string;
  timeDeleted: string;
}

/** The provider's timestamps: UTC, seconds, no zone; "0001-01-01T00:00:00" for "never". */
const NEVER = "0001-01-01T00:00:00";
const stamp = (d: Date) => d.toISOString().slice(0, 19);

export function isPartnerPath(rawUrl: string | undefined): boolean {
  return PARTNER_PATH.test((rawUrl ?? "").split("?")[0] ?? "");
}

export class SimulatedPartner {
  private readonly entries = new Map<string, Entry>();
  private mode: PartnerAnswer = "list";
  private served = 0;
  /** Set once the server listens: the apiUrl entries carry when `listsApiUrl` is on. */
  apiUrl = "";

  constructor(
    private readonly provider: SimulatedProvider,
    private readonly token: string | null,
    private readonly listsApiUrl: boolean,
  ) {}

  controls(): SimPartnerControls {
    return {
      token: this.token,
      entry: (id, patch) => this.patch(id, patch),
      answer: (mode) => void (this.mode = mode),
      calls: () => this.served,
    };
  }

  handle(req: IncomingMessage, res: ServerResponse): void {
    const [, method, token] = PARTNER_PATH.exec((req.url ?? "").split("?")[0] ?? "") ?? [];
    // The real partner API says "no" under HTTP 200 with a code in the body: clients must read it.
    if (this.token === null || token !== this.token) return send(res, 200, { code: 401, description: "Unauthorized: invalid partner token" });
    if (method !== "getInstances") return send(res, 200, { code: 404, description: `method ${method} not found` });
    if (req.method !== "GET" && req.method !== "POST") return send(res, 405, { code: 405, description: "use GET" });
    this.served += 1;
    this.answerListing(res);
  }

  private answerListing(res: ServerResponse): void {
    switch (this.mode) {
      case "not_json":
        return void sendText(res, "<html><body>502 Bad Gateway</body></html>");
      case "wrong_shape":
        return send(res, 200, { instances: this.listing() });
      case "entry_without_id":
        return send(res, 200, [...this.listing(), { name: "broken", apiTokenInstance: 12345, deleted: "no" }]);
      case "busy":
        return send(res, 200, { code: 429, description: "Too Many Requests" });
      default:
        return send(res, 200, this.listing());
    }
  }

  private listing(): unknown[] {
    const out: unknown[] = [];
    for (const instance of this.provider.instances.values()) {
      const e = this.entryOf(instance.idInstance);
      if (!e.listed) continue;
      out.push({
        idInstance: Number(instance.idInstance),
        name: e.name,
        typeInstance: e.typeInstance,
        typeAccount: "",
        partnerUserUiid: "",
        timeCreated: e.timeCreated,
        timeDeleted: e.timeDeleted,
        apiTokenInstance: instance.token,
        deleted: e.deleted,
        tariff: "PARTNER",
        isFree: false,
        isPartner: true,
        expirationDate: stamp(new Date(Date.now() + 86_400_000)),
        isExpired: false,
        ...(this.listsApiUrl && { apiUrl: this.apiUrl }),
      });
    }
    return out;
  }

  private entryOf(idInstance: string): Entry {
    let e = this.entries.get(idInstance);
    if (!e) {
      e = { name: `Instance ${idInstance}`, typeInstance: "whatsapp", deleted: false, listed: true, timeCreated: stamp(new Date()), timeDeleted: NEVER };
      this.entries.set(idInstance, e);
    }
    return e;
  }

  private patch(idInstance: string, patch: PartnerEntryPatch): void {
    this.provider.require(idInstance);
    const e = this.entryOf(idInstance);
    if (patch.deleted !== undefined) e.timeDeleted = patch.deleted ? stamp(new Date()) : NEVER;
    Object.assign(e, Object.fromEntries(Object.entries(patch).filter(([, v]) => v !== undefined)));
  }
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const payload = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(payload) });
  res.end(payload);
}

function sendText(res: ServerResponse, text: string): void {
  res.writeHead(200, { "content-type": "text/html", "content-length": Buffer.byteLength(text) });
  res.end(text);
}
