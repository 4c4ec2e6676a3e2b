import { createHash, randomBytes } from "node:crypto";
import { PNG } from "pngjs";
import QRCode from "qrcode";
import { withTextChunk } from "./png-text.js";

/** One QR image as the simulator shows it. */
export interface QrImage {
  /** The text encoded in the QR, e.g. `qrfleet-sim:1101000001:2:3:9f2c0a1b` */
  content: string;
  /** The PNG in base64 without a `data:` prefix, as GREEN-API sends it. */
  base64: string;
  /** The serialized `qrCode` frame, built once and shared by every socket showing this image. */
  frame: Buffer;
  /** Hex sha256 of the PNG bytes: how a receiver downstream recognises this exact image. */
  sha256: string;
}

/** Who asks for an image: a socket's rotation, or a REST snapshot (`connection: 0`). */
export interface ImageRequest {
  idInstance: string;
  connection: number;
  rotation: number;
}

export type ImageMode = "unique" | "pool" | "tagged";

export interface ImageSource {
  next(request: ImageRequest): Promise<QrImage>;
  stats(): { mode: ImageMode; rendered: number; renderMsAvg: number; queued: number };
}

// Scale 3 keeps a ~1 KB PNG that jsQR decodes reliably while costing about a millisecond.
const RENDER_OPTIONS = { type: "png", scale: 3, margin: 2, errorCorrectionLevel: "M" } as const;

export function qrFrame(message: string): Buffer {
  return Buffer.from(JSON.stringify({ type: "qrCode", message }));
}

function image(content: string, png: Buffer): QrImage {
  const base64 = png.toString("base64");
  return { content, base64, frame: qrFrame(base64), sha256: createHash("sha256").update(png).digest("hex") };
}

/**
 * Renders synchronously: the QR matrix and a grayscale PNG with zlib's sync deflate cost about
 * 1.5 ms of CPU. (qrcode's async toBuffer streams through pngjs and, serialised under load,
 * turned that into ~100 ms of latency per image, so sockets timed out before their first QR.)
 */
class Renderer {
  rendered = 0;
  private totalMs = 0;

  render(content: string): Promise<QrImage> {
    const started = performance.now();
    try {
      return Promise.resolve(image(content, renderPng(content)));
    } catch (err) {
      return Promise.reject(err);
    } finally {
      this.rendered += 1;
      this.totalMs += performance.now() - started;
    }
  }

  stats() {
    return { rendered: this.rendered, renderMsAvg: this.rendered ? this.totalMs / this.rendered : 0, queued: 0 };
  }
}

function renderPng(content: string): Buffer {
  const { modules } = QRCode.create(content, { errorCorrectionLevel: RENDER_OPTIONS.errorCorrectionLevel });
  const { scale, margin } = RENDER_OPTIONS;
  const dim = (modules.size + 2 * margin) * scale;
  const png = new PNG({ width: dim, height: dim, colorType: 0, inputColorType: 0, inputHasAlpha: false });
  const pixels = Buffer.alloc(dim * dim, 0xff);
  for (let row = 0; row < modules.size; row += 1) {
    for (let col = 0; col < modules.size; col += 1) {
      if (!modules.get(row, col)) continue;
      for (let dy = 0; dy < scale; dy += 1) {
        const offset = ((row + margin) * scale + dy) * dim + (col + margin) * scale;
        pixels.fill(0, offset, offset + scale);
      }
    }
  }
  png.data = pixels;
  return PNG.sync.write(png, { colorType: 0, inputColorType: 0, inputHasAlpha: false });
}

function nonce(): string {
  return randomBytes(4).toString("hex");
}

/** A fresh image per rotation whose content names the instance, connection and rotation. */
export function uniqueImages(): ImageSource {
  const renderer = new Renderer();
  return {
    next: ({ idInstance, connection, rotation }) =>
      renderer.render(`qrfleet-sim:${idInstance}:${connection}:${rotation}:${nonce()}`),
    stats: () => ({ mode: "unique", ...renderer.stats() }),
  };
}

/**
 * A small pool rendered once, for the benchmark: 10,000 sockets rotating every 20 s would
 * otherwise need 500 renders a second, most of a core on this machine. Contents are not
 * unique per rotation here, but two consecutive rotations of one socket always differ.
 */
export async function pooledImages(size: number): Promise<ImageSource> {
  const renderer = new Renderer();
  const pool = await renderPool(renderer, size);
  return {
    next: (request) => Promise.resolve(pickFrom(pool, request)),
    stats: () => ({ mode: "pool", ...renderer.stats() }),
  };
}

/** The keyword of the text chunk a tagged frame carries; its text is `<idInstance>:<connection>:<rotation>`. */
export const FRAME_TAG_KEYWORD = "qrfleet-sim";

/**
 * The pool's pictures, but every frame's bytes unique: a `tEXt` chunk naming the instance,
 * connection and rotation is inserted into the pooled PNG. The benchmark matches a delivered
 * QR to the frame that carried it by sha256, at up to thousands of frames a second, where
 * rendering each (~1.5 ms) would cost more CPU than the daemon under test. The decoded QR text
 * is the pooled image's, so `content` repeats; the bytes never do.
 */
export async function taggedImages(size: number): Promise<ImageSource> {
  const renderer = new Renderer();
  const pool = await renderPool(renderer, size);
  const pngs = new Map(pool.map((img) => [img, Buffer.from(img.base64, "base64")]));
  return {
    next: (request) => {
      const pooled = pickFrom(pool, request);
      const tag = `${request.idInstance}:${request.connection}:${request.rotation}`;
      return Promise.resolve(image(pooled.content, withTextChunk(pngs.get(pooled)!, FRAME_TAG_KEYWORD, tag)));
    },
    stats: () => ({ mode: "tagged", ...renderer.stats() }),
  };
}

async function renderPool(renderer: Renderer, size: number): Promise<QrImage[]> {
  const pool: QrImage[] = [];
  for (let k = 0; k < size; k += 1) pool.push(await renderer.render(`qrfleet-sim:pool:${k}:${nonce()}`));
  return pool;
}

/** Consecutive rotations of one socket walk the pool, so they always show different pictures. */
function pickFrom(pool: QrImage[], { idInstance, connection, rotation }: ImageRequest): QrImage {
  const offset = hashOf(`${idInstance}:${connection}`);
  return pool[(offset + rotation) % pool.length]!;
}

function hashOf(text: string): number {
  let h = 2166136261;
  for (let i = 0; i < text.length; i += 1) h = Math.imul(h ^ text.charCodeAt(i), 16777619);
  return h >>> 0;
}
