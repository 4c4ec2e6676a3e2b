/** Reads server-sent events from a fetch response until `done` says so (or the stream ends). */
export interface SseEvent {
  event: string;
  data: Record<string, unknown>;
}

export async function readEvents(res: Response, done: (events: SseEvent[]) => boolean, timeoutMs = 10_000): Promise<{ events: SseEvent[]; ended: boolean; text: string }> {
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  const events: SseEvent[] = [];
  let text = "";
  let ended = false;
  const timer = setTimeout(() => void reader.cancel(), timeoutMs);
  try {
    while (!done(events)) {
      const { value, done: finished } = await reader.read();
      if (finished) {
        ended = true;
        break;
      }
      text += decoder.decode(value, { stream: true });
      events.splice(0, events.length, ...parse(text));
    }
  } finally {
    clearTimeout(timer);
  }
  return { events, ended, text };
}

function parse(text: string): SseEvent[] {
  return text
    .split("\n\n")
    .slice(0, -1)
    .flatMap((block) => {
      const lines = block.split("\n");
      const event = lines.find((l) => l.startsWith("event: "))?.slice(7);
      const data = lines.find((l) => l.startsWith("data: "))?.slice(6);
      return event && data ? [{ event, data: JSON.parse(data) as Record<string, unknown> }] : [];
    });
}

/** A valid-looking token with one character of its MAC changed. */
export function tamper(token: string): string {
  const i = token.length - 6;
  const swapped = token[i] === "A" ? "B" : "A";
  return token.slice(0, i) + swapped + token.slice(i + 1);
}
