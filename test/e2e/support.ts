import { Webhook } from "standardwebhooks";
import type { Simulator } from "../../src/simulator/index.js";
import type { ReceivedRequest } from "../support/receiver.js";

/** What the end-to-end suites share: reading what an operator got, as an operator's software would. */

export function pngOfDataUrl(value: unknown): Buffer {
  const m = /^data:image\/png;base64,([A-Za-z0-9+/=]+)$/.exec(String(value));
  if (!m) throw new Error(`not a PNG data URL: ${String(value).slice(0, 40)}`);
  return Buffer.from(m[1]!, "base64");
}

export interface Hook {
  id: string;
  type: string;
  timestamp: string;
  data: Record<string, unknown>;
  req: ReceivedRequest;
}

/** Verifies a request the way a receiver must (standardwebhooks); throws when the signature does not hold. */
export function verified(req: ReceivedRequest, secret: string): Hook {
  const body = new Webhook(secret).verify(req.body, req.headers as Record<string, string>) as Omit<Hook, "id" | "req">;
  return { ...body, id: String(req.headers["webhook-id"]), req };
}

/**
 * Records every QR text the simulator shows for these instances. Rotations in these suites are
 * hundreds of ms apart, so polling every 20 ms sees each one.
 */
export function watchQrs(sim: Simulator, idInstance: string) {
  const seen = new Set<string>();
  const poll = () => {
    const text = sim.currentQr(idInstance);
    if (text) seen.add(text);
  };
  const timer = setInterval(poll, 20);
  return {
    seen,
    stop() {
      clearInterval(timer);
      poll();
    },
  };
}

/** Every spelling of a secret that could leak: as is, and the key of a whsec_ secret alone. */
export function spellings(secrets: Array<string | null | undefined>): string[] {
  return secrets.flatMap((s) => (s ? [s, ...(s.startsWith("whsec_") ? [s.slice(6)] : [])] : []));
}
