/**
 * The event stream (GET /api/events): a peer's mail pushed as server-sent events, on one
 * subscription for the stream's whole life.
 *
 * Each message's event id is its message id. Nothing is acknowledged until the client says so:
 * it reconnects with `Last-Event-ID` (or `?after=`), which acknowledges everything up to it and
 * resumes after it, exactly like /api/poll's cursor. So a connection cut mid-stream loses and
 * repeats nothing. To keep unacknowledged mail small, a stream that has sent UNACKED_MAX
 * messages ends (`reconnect`), as it does before the function's time runs out.
 *
 * A stream ends with an `end` event whose reason says what the client does next:
 *   reconnect    reconnect at once, after the last event id
 *   replaced     this peer opened another stream; stay away (reconnecting would replace that one)
 *   room-closed  the room closed (its room-closed message came just before); the session is over
 *   gone         this peer left or was removed; the session is over
 */
import { nanoid } from "nanoid";
import type { Context } from "./context.js";
import { deny, toMessage, uncharged, type Message } from "./signaling.js";
import { messageId } from "./store/message-id.js";
import { CLOSED_MESSAGE_ID, READ_BATCH, StoreUnavailable, type Answer, type Call, type Listener } from "./store/types.js";

export type EndReason = "reconnect" | "replaced" | "room-closed" | "gone";

export type StreamEvent = { kind: "message"; message: Message } | { kind: "heartbeat" } | { kind: "end"; reason: EndReason };

/** Messages a stream sends before it asks its client to reconnect (and so acknowledge them). */
export const UNACKED_MAX = 100;

/**
 * Opens the caller's stream: subscribes, acknowledges `after`, and reads what is waiting — all
 * before the first byte, so a bad token or a missing room is still a plain 401 problem. That
 * first read takes the call's charge (the Answer's window).
 */
export async function openEventStream(ctx: Context, call: Call, after: string | null, signal: AbortSignal): Promise<Answer<AsyncGenerator<StreamEvent>>> {
  const mark = `events.${nanoid(12)}`;
  const listener = await ctx.store.listen(call.roomId, call.peerId);
  try {
    const first = await readFrom(ctx, call, after, after, mark);
    return { ...first, value: follow(ctx, uncharged(call), listener, first.value, after, mark, signal) };
  } catch (error) {
    listener.close();
    throw error;
  }
}

async function readFrom(ctx: Context, call: Call, ack: string | null, from: string | null, mark?: string): Promise<Answer<Message[]>> {
  const found = await ctx.store.read(call, ack, ctx.now(), mark, from ?? undefined);
  if (typeof found.value === "string") deny(found.value);
  return { ...found, value: found.value.map(toMessage) };
}

async function* follow(
  ctx: Context,
  caller: Call,
  listener: Listener,
  first: Message[],
  after: string | null,
  mark: string,
  signal: AbortSignal,
): AsyncGenerator<StreamEvent> {
  try {
    const deadline = ctx.now() + ctx.config.eventsStreamMs;
    let cursor = after;
    let unacked = 0;
    let lastWrite = ctx.now();
    let markSeen = false;
    let batch = first;
    for (;;) {
      for (const message of batch) {
        yield { kind: "message", message };
        // A room closed before this stream opened: its peers read that it did, and no more.
        if (message.id === CLOSED_MESSAGE_ID) return yield { kind: "end", reason: "room-closed" };
        cursor = message.id;
        unacked++;
        lastWrite = ctx.now();
      }
      if (unacked >= UNACKED_MAX) return yield { kind: "end", reason: "reconnect" };
      // A full batch may have more behind it.
      if (batch.length === READ_BATCH) {
        batch = (await readFrom(ctx, caller, null, cursor)).value;
        continue;
      }
      batch = [];
      const now = ctx.now();
      if (now >= deadline) return yield { kind: "end", reason: "reconnect" };
      const wake = await listener.next(Math.min(deadline, lastWrite + ctx.config.eventsHeartbeatMs) - now, signal);
      if (signal.aborted) return;
      switch (wake.kind) {
        case "timeout":
          if (ctx.now() < deadline) {
            yield { kind: "heartbeat" };
            lastWrite = ctx.now();
          }
          break;
        case "closed":
          batch = [{ id: CLOSED_MESSAGE_ID, ...JSON.parse(wake.body) } as Message];
          break;
        case "gone":
          return yield { kind: "end", reason: "gone" };
        case "lost":
          throw new StoreUnavailable("subscription lost");
        case "waiter":
          // Marks arrive in publish order: one of a stream after this one's own is a newer stream.
          if (wake.mark === mark) markSeen = true;
          else if (markSeen && wake.mark.startsWith("events.")) return yield { kind: "end", reason: "replaced" };
          break;
        case "message":
          // The wake carries the message when it fits; one already read (it raced the first read) is skipped.
          if (wake.message) batch = messageId.isAfter(wake.message.id, cursor) ? [toMessage(wake.message)] : [];
          else batch = (await readFrom(ctx, caller, null, cursor)).value;
          break;
      }
    }
  } finally {
    listener.close();
  }
}

/** An event as it goes on the wire (text/event-stream). */
export function eventFrame(event: StreamEvent): string {
  switch (event.kind) {
    case "message": {
      const id = event.message.id === CLOSED_MESSAGE_ID ? "" : `id: ${event.message.id}\n`;
      return `${id}data: ${JSON.stringify(event.message)}\n\n`;
    }
    case "heartbeat":
      return ": keep-alive\n\n";
    case "end":
      return `event: end\ndata: ${JSON.stringify({ reason: event.reason })}\n\n`;
  }
}

/** What a stream opens with: the reconnect delay for EventSource, and a first byte at once (a client that gets none is behind a buffering proxy). */
export const STREAM_PREAMBLE = "retry: 1000\n: signalbox events\n\n";

/** The stream as text: the preamble, then each event's frame. */
export async function* eventText(events: AsyncGenerator<StreamEvent>): AsyncGenerator<string> {
  yield STREAM_PREAMBLE;
  for await (const event of events) yield eventFrame(event);
}
