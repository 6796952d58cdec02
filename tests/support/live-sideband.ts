/**
 * OpenAI's GPT-Live sideband, stood in for by a WebSocket server on loopback: a client attaches
 * at /v1/live/sessions/{id}/attach with the API key as bearer; `session.close` is answered, as
 * OpenAI's reference has it, by `session.closed` (reason close_requested, the usage so far).
 * HTTP to the same base (POST /v1/live/sessions) is msw's to answer.
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import type { SessionClosedEvent } from "openai/resources/live/live";
import { WebSocketServer } from "ws";

export interface LiveSideband {
  /** OpenAI's base URL, as OPENAI_BASE_URL takes it (http://…/v1: the SDK attaches over ws://). */
  base: string;
  /** Each attach: the session, the bearer it came with, and the events it sent. */
  attached: { sessionId: string; auth: string | undefined; events: { type: string }[] }[];
  /** The sessions a client asked to close. */
  closed(): string[];
  close(): Promise<void>;
}

export async function startLiveSideband(): Promise<LiveSideband> {
  const server = createServer((_, res) => res.writeHead(404).end());
  const wss = new WebSocketServer({ server });
  const attached: LiveSideband["attached"] = [];
  wss.on("connection", (socket, request) => {
    const sessionId = /^\/v1\/live\/sessions\/([^/?]+)\/attach/.exec(request.url ?? "")?.[1];
    if (!sessionId) return socket.close(1008, "not a sideband");
    const attach = { sessionId: decodeURIComponent(sessionId), auth: request.headers.authorization, events: [] as { type: string }[] };
    attached.push(attach);
    socket.on("message", (data) => {
      const event = JSON.parse(String(data)) as { type: string };
      attach.events.push(event);
      if (event.type !== "session.close") return;
      const closed: SessionClosedEvent = {
        type: "session.closed",
        event_id: `event_${attached.length}`,
        reason: "close_requested",
        session: { id: attach.sessionId, expires_at: 0, model: "gpt-live-1.1", status: "active" },
        usage: { seconds: 7 },
      };
      socket.send(JSON.stringify(closed));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    base: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`,
    attached,
    closed: () => attached.filter((a) => a.events.some((e) => e.type === "session.close")).map((a) => a.sessionId),
    async close() {
      wss.clients.forEach((c) => c.terminate());
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
