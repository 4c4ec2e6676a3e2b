import type { ChildProcess } from "node:child_process";

/**
 * Calls from the orchestrator to a forked child (the peers, the bare client) over Node's IPC
 * channel, each answered once, with a bound; and events the child pushes (its stats, once a second).
 */

/** A child's calls: name → handler of one argument. `never` lets any concrete handler type fit. */
export type Api<A> = { [K in keyof A]: (arg: never) => unknown };

interface CallMessage {
  call: string;
  id: number;
  arg: unknown;
}

type ReplyMessage = { id: number; ok: true; value: unknown } | { id: number; ok: false; error: string };

interface EventMessage {
  event: string;
  value: unknown;
}

export class ChildLink<A extends Api<A>> {
  private next = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private readonly listeners = new Map<string, (value: unknown) => void>();

  constructor(
    private readonly child: ChildProcess,
    private readonly name: string,
  ) {
    child.on("message", (m: ReplyMessage | EventMessage) => {
      if ("event" in m) return this.listeners.get(m.event)?.(m.value);
      const waiter = this.pending.get(m.id);
      this.pending.delete(m.id);
      if (m.ok) waiter?.resolve(m.value);
      else waiter?.reject(new Error(`${name}: ${m.error}`));
    });
    child.on("exit", (code, signal) => {
      for (const waiter of this.pending.values()) waiter.reject(new Error(`${name} exited (${signal ?? `code ${code}`}) before answering`));
      this.pending.clear();
    });
  }

  call<K extends keyof A & string>(call: K, arg: Parameters<A[K]>[0], timeoutMs = 30_000): Promise<Awaited<ReturnType<A[K]>>> {
    const id = this.next++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`${this.name} did not answer ${call} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, {
        resolve: (v) => (clearTimeout(timer), resolve(v as Awaited<ReturnType<A[K]>>)),
        reject: (e) => (clearTimeout(timer), reject(e)),
      });
      if (!this.child.connected) return this.pending.get(id)!.reject(new Error(`${this.name} is not running`));
      this.child.send({ call, id, arg } satisfies CallMessage);
    });
  }

  on(event: string, listener: (value: unknown) => void): void {
    this.listeners.set(event, listener);
  }
}

/**
 * In the child: answers the parent's calls. A child whose parent is gone (the orchestrator was
 * killed) exits at once instead of holding sockets and a database open forever.
 */
export function serveParent<A extends Api<A>>(handlers: A): void {
  if (!process.send) throw new Error("this module runs as a child of the bench orchestrator (node:child_process fork)");
  process.on("message", (m: CallMessage) => {
    const handler = (handlers as Record<string, unknown>)[m.call];
    Promise.resolve()
      .then(() => {
        if (typeof handler !== "function") throw new Error(`unknown call ${m.call}`);
        return (handler as (arg: unknown) => unknown)(m.arg);
      })
      .then(
        (value) => process.send?.({ id: m.id, ok: true, value: value ?? null } satisfies ReplyMessage),
        (err: unknown) => process.send?.({ id: m.id, ok: false, error: err instanceof Error ? err.message : String(err) } satisfies ReplyMessage),
      );
  });
  process.on("disconnect", () => process.exit(1));
  // Ctrl-C reaches the whole process group; the orchestrator decides when its children stop.
  process.on("SIGINT", () => undefined);
}

export function pushToParent(event: string, value: unknown): void {
  process.send?.({ event, value } satisfies EventMessage);
}
