/** A raw client for GET /api/events: opens a stream and hands out its events one at a time. */
import { createParser } from "eventsource-parser";
import type { Peer } from "./api.js";

export type StreamItem = { kind: "event"; id?: string; event?: string; data: any } | { kind: "comment"; text: string } | { kind: "closed" };

export interface TestStream {
  status: number;
  headers: Headers;
  /** The problem document, when the stream was refused. */
  problem?: any;
  /** The next event or comment; `closed` once the server ended the stream. */
  next(timeoutMs?: number): Promise<StreamItem>;
  /** The next event, skipping comments. */
  nextEvent(timeoutMs?: number): Promise<Exclude<StreamItem, { kind: "comment" }>>;
  /** Cuts the connection, as a network would. */
  close(): void;
}

export async function openStream(base: string, peer: Peer, options: { after?: string; lastEventId?: string; path?: string; token?: string | null } = {}): Promise<TestStream> {
  const controller = new AbortController();
  const headers: Record<string, string> = { accept: "text/event-stream" };
  const token = options.token === undefined ? peer.token : options.token;
  if (token) headers.authorization = `Bearer ${token}`;
  if (options.lastEventId) headers["last-event-id"] = options.lastEventId;
  const path = options.path ?? `/api/events?roomId=${peer.roomId}${options.after ? `&after=${options.after}` : ""}`;
  const res = await fetch(base + path, { headers, signal: controller.signal });
  const queue: StreamItem[] = [];
  let wake: (() => void) | null = null;
  const push = (item: StreamItem) => {
    queue.push(item);
    wake?.();
  };
  const stream: TestStream = {
    status: res.status,
    headers: res.headers,
    async next(timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      while (!queue.length) {
        if (Date.now() >= deadline) throw new Error(`no event within ${timeoutMs} ms`);
        await new Promise<void>((resolve) => {
          wake = resolve;
          setTimeout(resolve, Math.max(0, deadline - Date.now()));
        });
        wake = null;
      }
      return queue.shift()!;
    },
    async nextEvent(timeoutMs = 10_000) {
      for (;;) {
        const item = await stream.next(timeoutMs);
        if (item.kind !== "comment") return item as Exclude<StreamItem, { kind: "comment" }>;
      }
    },
    close: () => controller.abort(),
  };
  if (!res.ok) {
    stream.problem = await res.json();
    return stream;
  }
  const parser = createParser({
    onEvent: (e) => push({ kind: "event", id: e.id, event: e.event, data: JSON.parse(e.data) }),
    onComment: (text) => push({ kind: "comment", text }),
  });
  void (async () => {
    try {
      for await (const chunk of res.body!.pipeThrough(new TextDecoderStream())) parser.feed(chunk);
    } catch {
      // cut by close()
    }
    push({ kind: "closed" });
  })();
  return stream;
}
