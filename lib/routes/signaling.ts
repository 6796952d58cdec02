/**
 * The signaling routes: rooms, peers, mail, chat, diagnostics — each its schema, its auth rule
 * and the one lib/ call it makes. Each file in api/ exports one entry, so Vercel serves each as
 * its own function, loading only its table (the AI routes are lib/routes/ai.ts).
 */
import type { Context } from "../context.js";
import { authorizeRoomCreation } from "../deployment-auth.js";
import { answered, ok, route, type Reply } from "../http/route.js";
import { eventText, openEventStream } from "../events.js";
import { problems } from "../problem.js";
import {
  AdmitBody,
  CandidateBody,
  ChatBody,
  CreateRoomBody,
  DescriptionBody,
  EventsQuery,
  JoinBody,
  LockBody,
  RoomBody,
  OptionalRoomQuery,
  PeerQuery,
  PollQuery,
  RoomQuery,
  TakeQuery,
  TicketBody,
  cursor,
} from "../schemas.js";
import * as signaling from "../signaling.js";
import { StoreUnavailable, type Answer } from "../store/types.js";
import { VERSION } from "../version.js";

/** Mail read: 200 with it, 204 when none came (with the window, if the read was charged). */
const mail = (result: Answer<{ messages: unknown[] }>): Reply => ({ ...answered(result), ...(result.value.messages.length ? {} : { status: 204, body: undefined }) });

const waits = (query: { wait: number }) => query.wait > 0;

function validateCursor(value: string): string {
  const parsed = cursor.safeParse(value);
  if (!parsed.success) throw problems.invalidRequest(`Last-Event-ID: ${parsed.error.issues[0].message}`, [{ field: "Last-Event-ID", message: parsed.error.issues[0].message }]);
  return parsed.data;
}

const MAIL = { 200: "Messages waiting: `{messages}`", 204: "Nothing arrived within `wait` seconds" };

function descriptionRoute(type: "offer" | "answer") {
  return route({
    POST: {
      summary: `Send an SDP ${type} to a peer of the room`,
      responses: { 201: "Queued for the recipient: `{id}`" },
      body: DescriptionBody(type),
      auth: "peer",
      handle: async ({ ctx, call, body }) => answered(await signaling.sendDescription(ctx, call, body.to, body.description), 201),
    },
    GET: {
      summary: `Take the ${type}s addressed to me (each goes to exactly one request); waits up to \`wait\` seconds`,
      responses: MAIL,
      query: TakeQuery,
      auth: "peer",
      waits,
      handle: async ({ ctx, call, query, signal }) => mail(await signaling.take(ctx, call, type, { waitMs: query.wait * 1000, signal })),
    },
  });
}

/**
 * A closed room's AI calls are hung up. The bridge is loaded only for a room that had some: a
 * signaling function does not load the AI code to close a room without.
 */
async function hangUpSessions(ctx: Context, roomId: string, sessions: string[]) {
  if (sessions.length === 0) return;
  const bridge = await import("../openai/bridge.js");
  await bridge.hangupClosed(ctx, roomId, sessions);
}

async function health(ctx: Context): Promise<Reply> {
  // Which transport, and why (the configuration's rule that picked it).
  const chosen = ctx.config.store;
  const transport = chosen.transport === "tcp" && chosen.cluster ? "cluster" : chosen.transport;
  const store = { kind: ctx.store.kind, transport, reason: chosen.reason, reachable: true, latencyMs: 0 };
  try {
    store.latencyMs = Math.round((await ctx.store.ping()) * 100) / 100;
  } catch (error) {
    if (!(error instanceof StoreUnavailable)) throw error;
    throw problems.storeUnavailable({ store: { kind: ctx.store.kind, reachable: false }, version: VERSION });
  }
  return ok({
    status: "ok",
    version: VERSION,
    store,
    modes: {
      store: ctx.store.kind,
      multiInstance: ctx.store.kind === "redis",
      allowedOrigins: ctx.config.allowedOrigins,
      openai: ctx.config.openai.mode === "simulate" ? "simulated" : "openai",
      presets: ctx.config.openai.allowedPresets,
    },
    time: ctx.now(),
  });
}

/** The signaling routes, by the path each is served at (api/<path>.ts exports its entry). */
export const signalingRoutes = {
  "/api/rooms": route({
    POST: {
      summary: "Create a room; the creator is its host (with AUTH_SECRET or AUTH_JWKS_URL set, send that secret or a JWT as bearer)",
      responses: { 201: "`{roomId, peerId, token, expiresAt, room, iceServers}`" },
      body: CreateRoomBody,
      limit: "rooms",
      handle: async ({ ctx, body, bearer, once }) => {
        await authorizeRoomCreation(ctx.config, bearer);
        return answered(await signaling.createRoom(ctx, body, once), 201);
      },
    },
    PATCH: {
      summary: "Lock or unlock the room (host only): a locked room refuses every new join; peers inside are unaffected",
      responses: { 204: "Done" },
      problems: { 403: "Not the host (`forbidden`)" },
      body: LockBody,
      auth: "peer",
      handle: async ({ ctx, call, body }) => answered(await signaling.setLocked(ctx, call, body.locked), 204),
    },
    DELETE: {
      summary: "Close the room (host only): waiting peers get `room-closed`, every key goes",
      responses: { 204: "Closed" },
      query: RoomQuery,
      auth: "peer",
      handle: async ({ ctx, call }) => {
        const closed = await signaling.closeRoom(ctx, call);
        await hangUpSessions(ctx, call.roomId, closed.value.sessions);
        return answered(closed, 204);
      },
    },
  }),

  "/api/rooms/key": route({
    POST: {
      summary: "A new join key for a key room (host only); the old one stops working at once",
      responses: { 201: "`{joinKey}`" },
      problems: { 403: "Not the host (`forbidden`)", 409: "The room has no join key (`open_room`)" },
      body: RoomBody,
      auth: "peer",
      handle: async ({ ctx, call }) => answered(await signaling.rotateJoinKey(ctx, call), 201),
    },
  }),

  "/api/peers": route({
    POST: {
      summary: "Join a room by its ID (and, for a key room, its `joinKey`); in a lobby room, knock and wait for the host",
      responses: {
        201: "`{roomId, peerId, token, expiresAt, room, peers, iceServers}`",
        202: "In the lobby: `{status: \"waiting\", roomId, peerId, token, expiresAt}`; read your mail (the token reads only that) for `admitted` `{room, peers, iceServers}` or `denied`",
      },
      problems: {
        403: "A key room without its key, or with a wrong or replaced one (`join_key_required`, `join_key_invalid`); a locked room (`room_locked`)",
        409: "The room is full (`room_full`), or so is its lobby (`lobby_full`)",
      },
      body: JoinBody,
      limit: "joins",
      handle: async ({ ctx, body, once }) => {
        const joined = await signaling.joinRoom(ctx, body, once);
        return answered(joined, "status" in joined.value ? 202 : 201);
      },
    },
    GET: {
      summary: "The room and its peers",
      responses: { 200: "`{room, peers}`" },
      query: RoomQuery,
      auth: "peer",
      handle: async ({ ctx, call }) => answered(await signaling.listPeers(ctx, call)),
    },
    DELETE: {
      summary: "Leave, or (the host) remove a peer; the host leaving closes the room",
      responses: { 204: "Gone" },
      query: PeerQuery,
      auth: "peer",
      handle: async ({ ctx, call, query }) => {
        const left = await signaling.leaveRoom(ctx, call, query.peerId);
        await hangUpSessions(ctx, call.roomId, left.value.sessions);
        return answered(left, 204);
      },
    },
  }),

  "/api/admit": route({
    POST: {
      summary: "Let a peer waiting in the lobby in (`allow: true`) or not (host only); the same answer twice is harmless",
      responses: { 204: "Answered: the peer's mail gets `admitted` or `denied`" },
      problems: { 403: "Not the host (`forbidden`)", 404: "No such peer waiting (`peer_not_found`)", 409: "The room is full (`room_full`)" },
      body: AdmitBody,
      auth: "peer",
      handle: async ({ ctx, call, body }) => answered(await signaling.admit(ctx, call, body.peerId, body.allow), 204),
    },
  }),

  "/api/offer": descriptionRoute("offer"),
  "/api/answer": descriptionRoute("answer"),

  "/api/candidate": route({
    POST: {
      summary: "Send trickled ICE candidates (1–64; null ends gathering) to a peer of the room",
      responses: { 201: "Queued for the recipient: `{id}`" },
      body: CandidateBody,
      auth: "peer",
      handle: async ({ ctx, call, body }) => answered(await signaling.sendCandidates(ctx, call, body), 201),
    },
    GET: {
      summary: "Take the candidates addressed to me (each goes to exactly one request); waits up to `wait` seconds",
      responses: MAIL,
      query: TakeQuery,
      auth: "peer",
      waits,
      handle: async ({ ctx, call, query, signal }) => mail(await signaling.take(ctx, call, "candidate", { waitMs: query.wait * 1000, signal })),
    },
  }),

  "/api/poll": route({
    GET: {
      summary: "Everything addressed to me after `after` (which it acknowledges), in order; waits up to `wait` seconds",
      responses: { 200: "`{messages, cursor}`", 204: "Nothing arrived within `wait` seconds" },
      query: PollQuery,
      auth: "peer",
      waits,
      // A waiting poll is charged when it answers at once or is superseded, never for waiting.
      charge: (query) => (waits(query) ? "if-mail" : "up-front"),
      handle: async ({ ctx, call, query, signal }) => mail(await signaling.poll(ctx, call, query.after ?? null, { waitMs: query.wait * 1000, signal })),
    },
  }),

  "/api/events": route({
    GET: {
      summary:
        "My mail as server-sent events, each with its message id as event id; reconnecting with `Last-Event-ID` (or `after`) acknowledges up to it and resumes after it. Bearer token, or a stream ticket as `ticket`",
      responses: { 200: "`text/event-stream`: messages (`data`), `: keep-alive` comments, and a last `end` event `{reason}`: reconnect, replaced, room-closed or gone" },
      problems: { 401: "A stream ticket already used, replaced or expired (`invalid_ticket`)" },
      query: EventsQuery,
      auth: "peer",
      acceptsTicket: true,
      eventStream: true,
      waits: () => true,
      handle: async ({ ctx, call, query, headers, signal }) => {
        // EventSource resends the last event id as a header on its own reconnects: that wins over the URL's.
        const lastEventId = headers.get("last-event-id");
        const after = lastEventId ? validateCursor(lastEventId) : (query.after ?? null);
        const opened = await openEventStream(ctx, call, after, signal);
        return { status: 200, events: eventText(opened.value), window: opened.window };
      },
    },
  }),

  "/api/events/ticket": route({
    POST: {
      summary: "A single-use ticket (a minute) to open my event stream without headers, as a browser's EventSource must",
      responses: { 201: "`{ticket, expiresAt, url}`: open `url` (it carries the ticket) within a minute" },
      body: TicketBody,
      auth: "peer",
      handle: async ({ ctx, call }) => answered(await signaling.issueTicket(ctx, call), 201),
    },
  }),

  "/api/chat": route({
    POST: {
      summary: "Send a chat message to every other peer of the room",
      responses: { 201: "`{from, name, text, at}`" },
      body: ChatBody,
      auth: "peer",
      // Per sender and per room, inside the chat's own step (lib/signaling.ts).
      charge: () => "none",
      handle: async ({ ctx, call, body }) => answered(await signaling.chat(ctx, call, body.text), 201),
    },
    GET: {
      summary: "The room's last 50 chat messages",
      responses: { 200: "`{messages}`" },
      query: RoomQuery,
      auth: "peer",
      handle: async ({ ctx, call }) => answered(await signaling.chatHistory(ctx, call)),
    },
  }),

  "/api/ice-servers": route({
    GET: {
      summary: "Fresh ICE servers (TURN credentials renewed)",
      responses: { 200: "`{iceServers}`" },
      query: RoomQuery,
      auth: "peer",
      handle: async ({ ctx, call }) => answered(await signaling.iceServers(ctx, call)),
    },
  }),

  "/api/diagnostics": route({
    GET: {
      summary: "Health (store reachable, latency, version), or with `roomId` whether that room exists",
      responses: { 200: "`{status, version, store, modes, time}`, or `{room}`" },
      query: OptionalRoomQuery,
      handle: async ({ ctx, query }) => (query.roomId ? ok(await signaling.describeRoom(ctx, query.roomId)) : health(ctx)),
    },
  }),
};
