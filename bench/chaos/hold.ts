/**
 * A peer's answer held back: the request (or message) has arrived and waits for `release()`
 * before it is answered, so a test can act at the worst moment (PostgreSQL stopped while the
 * daemon waits for the reply it must then record).
 */
export interface Hold {
  /** Resolves when the held request or message has arrived. */
  arrived: Promise<void>;
  release(): void;
}

export interface HoldSlot {
  /** The pending hold, if any: taken by the next arrival. */
  take(): { arrive(): void; released: Promise<void> } | null;
  next(): Hold;
}

export function holdSlot(): HoldSlot {
  let pending: { arrive(): void; released: Promise<void> } | null = null;
  return {
    take() {
      const taken = pending;
      pending = null;
      return taken;
    },
    next() {
      let arrive!: () => void;
      let release!: () => void;
      const arrived = new Promise<void>((r) => (arrive = r));
      const released = new Promise<void>((r) => (release = r));
      pending = { arrive, released };
      return { arrived, release };
    },
  };
}
