/**
 * Every route of the API: its schema, its auth rule and the one lib/ call it makes.
 * Each file in api/ exports one entry, so Vercel serves each as its own function.
 */
import type { Context } from "./context.js";
import { noContent, ok, route, type Reply } from "./http/route.js";
import { sameSecret } from "./ids.js";
import * as bridge from "./openai/bridge.js";
import { problems } from "./problem.js";
import {
  AgentBody,
  CandidateBody,
  ChatBody,
  CreateRoomBody,
  DescriptionBody,
  JoinBody,
  OptionalRoomQuery,
  PeerQuery,
  PollQuery,
  RoomQuery,
  SessionBody,
  SessionQuery,
  TakeQuery,
} from "./schemas.js";
import * as signaling from "./signaling.js";
import { StoreUnavailable } from "./store/types.js";
import { VERSION } from "./version.js";

const mail = (result: { messages: unknown[] }): Reply => (result.messages.length ? ok(result) : noContent());

/**
 * A long-poll is not charged against the call limit: its wait paces it (an idle peer makes
 * ~2.4 a minute), and charging it would add a third of an idle peer's Redis bill.
 */
const LONG_POLL_SECONDS = 10;
const isLongPoll = (query: { wait: number }) => query.wait >= LONG_POLL_SECONDS;

/** With AUTH_SECRET set, only holders of it may create rooms. */
function requireDeploymentSecret(ctx: Context, bearer: string | null) {
  const secret = ctx.config.authSecret;
  if (!secret) return;
  if (!bearer) throw problems.missingToken();
  if (!sameSecret(bearer, secret)) throw problems.forbidden("Creating rooms needs this deployment's AUTH_SECRET as bearer token");
}

function descriptionRoute(type: "offer" | "answer") {
  return route({
    POST: {
      body: DescriptionBody(type),
      auth: "peer",
      handle: async ({ ctx, caller, body }) => ok(await signaling.sendDescription(ctx, caller, body.to, body.description), 201),
    },
    GET: {
      query: TakeQuery,
      auth: "peer",
      unlimited: isLongPoll,
      handle: async ({ ctx, caller, query, signal }) => mail(await signaling.take(ctx, caller, type, query.wait * 1000, signal)),
    },
  });
}

async function health(ctx: Context): Promise<Reply> {
  const store = { kind: ctx.store.kind, reachable: true, latencyMs: 0 };
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
      openai: ctx.realtime.kind,
      presets: ctx.config.openai.allowedPresets,
    },
    time: ctx.now(),
  });
}

export const handlers = {
  rooms: route({
    POST: {
      body: CreateRoomBody,
      limit: "rooms",
      handle: async ({ ctx, body, bearer }) => {
        requireDeploymentSecret(ctx, bearer);
        return ok(await signaling.createRoom(ctx, body), 201);
      },
    },
    DELETE: {
      query: RoomQuery,
      auth: "peer",
      handle: async ({ ctx, caller }) => (await signaling.closeRoom(ctx, caller), noContent()),
    },
  }),

  peers: route({
    POST: { body: JoinBody, handle: async ({ ctx, body }) => ok(await signaling.joinRoom(ctx, body), 201) },
    GET: { query: RoomQuery, auth: "peer", handle: async ({ ctx, caller }) => ok(await signaling.listPeers(ctx, caller)) },
    DELETE: {
      query: PeerQuery,
      auth: "peer",
      handle: async ({ ctx, caller, query }) => (await signaling.leaveRoom(ctx, caller, query.peerId), noContent()),
    },
  }),

  offer: descriptionRoute("offer"),
  answer: descriptionRoute("answer"),

  candidate: route({
    POST: { body: CandidateBody, auth: "peer", handle: async ({ ctx, caller, body }) => ok(await signaling.sendCandidates(ctx, caller, body), 201) },
    GET: {
      query: TakeQuery,
      auth: "peer",
      unlimited: isLongPoll,
      handle: async ({ ctx, caller, query, signal }) => mail(await signaling.take(ctx, caller, "candidate", query.wait * 1000, signal)),
    },
  }),

  poll: route({
    GET: {
      query: PollQuery,
      auth: "peer",
      unlimited: isLongPoll,
      handle: async ({ ctx, caller, query, signal }) => mail(await signaling.poll(ctx, caller, query.after ?? null, query.wait * 1000, signal)),
    },
  }),

  chat: route({
    POST: { body: ChatBody, auth: "peer", limit: "chat", handle: async ({ ctx, caller, body }) => ok(await signaling.chat(ctx, caller, body.text), 201) },
    GET: { query: RoomQuery, auth: "peer", handle: async ({ ctx, caller }) => ok(await signaling.chatHistory(ctx, caller)) },
  }),

  iceServers: route({
    GET: { query: RoomQuery, auth: "peer", handle: async ({ ctx, caller }) => ok(await signaling.iceServers(ctx, caller)) },
  }),

  session: route({
    POST: {
      body: SessionBody,
      acceptsSdp: true,
      auth: "peer",
      limit: "sessions",
      handle: async ({ ctx, caller, body, sentSdp }): Promise<Reply> => {
        const started = await bridge.startSession(ctx, caller, body.sdp, body.preset);
        const location = `/api/session?roomId=${caller.roomId}&id=${started.sessionId}`;
        // Raw SDP in, raw SDP out, as OpenAI's own calls endpoint answers.
        if (sentSdp) return { status: 201, body: started.sdp, contentType: "application/sdp", headers: { location, "x-session-id": started.sessionId } };
        return { status: 201, body: started, headers: { location } };
      },
    },
    DELETE: {
      query: SessionQuery,
      auth: "peer",
      handle: async ({ ctx, caller, query }) => (await bridge.hangup(ctx, caller, query.id), noContent()),
    },
  }),

  sessionPeer: route({
    POST: {
      body: AgentBody,
      auth: "peer",
      limit: "sessions",
      handle: async ({ ctx, caller, body, signal }) => ok(await bridge.addAgent(ctx, caller, body.preset, signal), 201),
    },
  }),

  sessionToken: route({
    POST: {
      body: AgentBody,
      auth: "peer",
      limit: "sessions",
      handle: async ({ ctx, caller, body }) => ok(await bridge.mintSecret(ctx, caller, body.preset), 201),
    },
  }),

  diagnostics: route({
    GET: {
      query: OptionalRoomQuery,
      handle: async ({ ctx, query }) => (query.roomId ? ok(await signaling.describeRoom(ctx, query.roomId)) : health(ctx)),
    },
  }),
};
