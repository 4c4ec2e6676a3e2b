import { createHash } from "node:crypto";
import { z } from "zod";
import { describeIssues } from "./script.js";

const generateOptions = z.strictObject({
  /** Leading digits of every id; the rest is a zero-padded counter up to 10 digits. @defaultValue "1101" */
  idPrefix: z.string().regex(/^\d{1,9}$/, "must be 1 to 9 digits").default("1101"),
  /** Tokens are derived from it, so the same seed gives the same fleet on every run. @defaultValue 1 */
  seed: z.union([z.number(), z.string()]).default(1),
});

export type GenerateOptions = z.input<typeof generateOptions>;

/** `n` fake instances: ids like 1101000001, 1101000002…, 50-hex-character tokens. */
export function generateInstances(n: number, opts: GenerateOptions = {}): Array<{ idInstance: string; token: string }> {
  const parsed = generateOptions.safeParse(opts);
  if (!parsed.success) throw new Error(`generateInstances: ${describeIssues(parsed.error)}`);
  const { idPrefix, seed } = parsed.data;
  const width = Math.max(1, 10 - idPrefix.length);
  if (!Number.isInteger(n) || n < 0 || n >= 10 ** width) {
    throw new Error(`generateInstances: n must be an integer from 0 to ${10 ** width - 1} with prefix ${idPrefix}`);
  }
  return Array.from({ length: n }, (_, i) => {
    const idInstance = idPrefix + String(i + 1).padStart(width, "0");
    const token = createHash("sha256").update(`qrfleet-sim:${seed}:${idInstance}`).digest("hex").slice(0, 50);
    return { idInstance, token };
  });
}
