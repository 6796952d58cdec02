/**
 * SUBSCRIBE over Upstash's REST API: `POST /subscribe/<channel>` answers with server-sent
 * events, `data: subscribe,<channel>,<n>` once live, then `data: message,<channel>,<payload>`.
 * The stream is read as the SSE format has it (eventsource-parser): comments and keep-alives,
 * `retry:`, `event:` and `id:` lines, CRLF line ends and data over several lines all parse.
 *
 * @upstash/redis has the same call (`redis.subscribe`), but it never reports a stream that
 * ends or breaks (it only prints to the console), so a waiting read would wait out its
 * deadline against a dead Redis. This one reports it, so the read can answer 503 at once.
 */
import { createParser } from "eventsource-parser";

export interface RestSubscription {
  /** Resolves once the subscription is live; rejects if it could not be made. */
  ready: Promise<void>;
  close(): void;
}

/** Most bytes an event may take (a message carries at most one request's body). */
const MAX_EVENT_BYTES = 1024 * 1024;

export function subscribeOverRest(
  connection: { url: string; token: string },
  channel: string,
  onMessage: (payload: string) => void,
  /** The stream ended or broke while still wanted. */
  onLost: (error: Error) => void,
): RestSubscription {
  const controller = new AbortController();
  let confirmed: (() => void) | undefined;
  const confirmation = new Promise<void>((resolve) => (confirmed = resolve));
  // Bytes read since the last whole event or comment: a line that never ends is refused.
  let pending = 0;
  const parser = createParser({
    onEvent: ({ data }) => {
      pending = 0;
      if (data.startsWith("subscribe,")) confirmed?.();
      else if (data.startsWith("message,")) {
        const rest = data.slice("message,".length);
        onMessage(rest.slice(rest.indexOf(",") + 1));
      }
    },
    onComment: () => (pending = 0),
  });

  async function read(body: ReadableStream<Uint8Array>) {
    const decoder = new TextDecoder();
    for await (const chunk of body as unknown as AsyncIterable<Uint8Array>) {
      pending += chunk.byteLength;
      parser.feed(decoder.decode(chunk, { stream: true }));
      if (pending > MAX_EVENT_BYTES) throw new Error("event too long");
    }
  }

  const ready = (async () => {
    const res = await fetch(`${connection.url.replace(/\/$/, "")}/subscribe/${encodeURIComponent(channel)}`, {
      method: "POST",
      headers: { authorization: `Bearer ${connection.token}`, accept: "text/event-stream" },
      signal: controller.signal,
    });
    if (!res.ok || !res.body) throw new Error(`subscribe answered ${res.status}`);
    const reading = read(res.body);
    // Live once confirmed; a stream that ends or breaks first was never live.
    await Promise.race([confirmation, reading.then(() => Promise.reject(new Error("subscription not confirmed")))]);
    reading.then(
      () => !controller.signal.aborted && onLost(new Error("subscription stream ended")),
      (error: Error) => !controller.signal.aborted && onLost(error),
    );
  })();
  ready.catch(() => controller.abort());
  return { ready, close: () => controller.abort() };
}
