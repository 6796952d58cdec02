/**
 * SUBSCRIBE over Upstash's REST API: `POST /subscribe/<channel>` answers with server-sent
 * events, `data: subscribe,<channel>,<n>` once live, then `data: message,<channel>,<payload>`.
 *
 * @upstash/redis has the same call (`redis.subscribe`), but it never reports a stream that
 * ends or breaks (it only prints to the console), so a waiting read would wait out its
 * deadline against a dead Redis. This one reports it, so the read can answer 503 at once.
 */
export interface RestSubscription {
  /** Resolves once the subscription is live; rejects if it could not be made. */
  ready: Promise<void>;
  close(): void;
}

/** Longest line an event may have (a message carries at most one request's body). */
const MAX_LINE = 1024 * 1024;

export function subscribeOverRest(
  connection: { url: string; token: string },
  channel: string,
  onMessage: (payload: string) => void,
  /** The stream ended or broke while still wanted. */
  onLost: (error: Error) => void,
): RestSubscription {
  const controller = new AbortController();
  const ready = (async () => {
    const res = await fetch(`${connection.url.replace(/\/$/, "")}/subscribe/${encodeURIComponent(channel)}`, {
      method: "POST",
      headers: { authorization: `Bearer ${connection.token}`, accept: "text/event-stream" },
      signal: controller.signal,
    });
    if (!res.ok || !res.body) throw new Error(`subscribe answered ${res.status}`);
    const lines = readLines(res.body);
    // The first event confirms the subscription; the rest are read in the background.
    const first = await lines.next();
    if (first.done || !first.value.startsWith("data: subscribe,")) throw new Error("subscription not confirmed");
    void (async () => {
      try {
        for await (const line of lines) {
          if (!line.startsWith("data: message,")) continue;
          const rest = line.slice("data: message,".length);
          onMessage(rest.slice(rest.indexOf(",") + 1));
        }
        if (!controller.signal.aborted) onLost(new Error("subscription stream ended"));
      } catch (error) {
        if (!controller.signal.aborted) onLost(error as Error);
      }
    })();
  })();
  ready.catch(() => controller.abort());
  return { ready, close: () => controller.abort() };
}

async function* readLines(body: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  let buffer = "";
  for await (const chunk of body as unknown as AsyncIterable<Uint8Array>) {
    buffer += decoder.decode(chunk, { stream: true });
    let newline: number;
    while ((newline = buffer.indexOf("\n")) >= 0) {
      const line = buffer.slice(0, newline).replace(/\r$/, "");
      buffer = buffer.slice(newline + 1);
      if (line) yield line;
    }
    if (buffer.length > MAX_LINE) throw new Error("event line too long");
  }
}
