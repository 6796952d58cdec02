/**
 * The AI session routes (OpenAI Realtime through lib/openai/bridge.ts): only their functions
 * load the bridge and what answers AI calls.
 */
import { authorizeCron, authorizeQStash } from "../deployment-auth.js";
import { noContent, ok, route, type Reply } from "../http/route.js";
import * as bridge from "../openai/bridge.js";
import { AgentBody, ExpireBody, SessionBody, SessionQuery } from "../schemas.js";

export const aiRoutes = {
  "/api/session": route({
    POST: {
      summary: "Start an OpenAI Realtime call from a browser's SDP offer (JSON, or raw application/sdp with roomId in the query)",
      responses: { 201: "`{sessionId, sdp, preset, upstream}`, or the raw SDP answer with Location and X-Session-Id" },
      body: SessionBody,
      acceptsSdp: true,
      auth: "peer",
      limit: "sessions",
      handle: async ({ ctx, call, body, sentSdp, url }): Promise<Reply> => {
        const started = await bridge.startSession(ctx, call, body.sdp, body.preset, url.origin);
        const location = `/api/session?roomId=${call.roomId}&id=${started.sessionId}`;
        // Raw SDP in, raw SDP out, as OpenAI's own calls endpoint answers.
        if (sentSdp) return { status: 201, body: started.sdp, contentType: "application/sdp", headers: { location, "x-session-id": started.sessionId } };
        return { status: 201, body: started, headers: { location } };
      },
    },
    DELETE: {
      summary: "Hang up an AI call of this room",
      responses: { 204: "Hung up" },
      query: SessionQuery,
      auth: "peer",
      handle: async ({ ctx, call, query }) => (await bridge.hangup(ctx, call, query.id), noContent()),
    },
  }),

  "/api/session/peer": route({
    POST: {
      summary: "Add an AI peer to the room; answers once it has answered the host's offer",
      responses: { 201: "`{sessionId, peerId, preset, upstream}`" },
      body: AgentBody,
      auth: "peer",
      limit: "sessions",
      // It waits for the host's offer: a held request, which ends when its client goes.
      waits: () => true,
      handle: async ({ ctx, call, body, signal, url }) => ok(await bridge.addAgent(ctx, call, body.preset, url.origin, signal), 201),
    },
  }),

  "/api/session/token": route({
    POST: {
      summary: "Mint a short-lived OpenAI client secret for a browser that talks to OpenAI itself",
      responses: { 201: "`{value, expiresAt, preset, upstream, callsUrl}`" },
      body: AgentBody,
      auth: "peer",
      limit: "sessions",
      handle: async ({ ctx, call, body }) => ok(await bridge.mintSecret(ctx, call, body.preset), 201),
    },
  }),

  "/api/session/expire": route({
    GET: {
      summary: "Hang up every AI call past OPENAI_MAX_SESSION_SECONDS (for Vercel Cron: send CRON_SECRET as bearer)",
      responses: { 200: "`{ended}`: how many calls were hung up" },
      problems: { 401: "No bearer token (`missing_token`)", 403: "CRON_SECRET is not set, or the bearer is not it (`forbidden`)" },
      handle: async ({ ctx, bearer }) => {
        authorizeCron(ctx.config, bearer);
        return ok(await bridge.endDueSessions(ctx));
      },
    },
    POST: {
      summary: "Hang up every AI call past OPENAI_MAX_SESSION_SECONDS (for QStash: the delayed message sent at each call's start, signed)",
      responses: { 200: "`{ended}`: how many calls were hung up" },
      problems: { 401: "No QStash signature, or not QStash's (`invalid_signature`)", 403: "QStash is not configured (`forbidden`)" },
      body: ExpireBody,
      handle: async ({ ctx, headers, bodyText, url }) => {
        await authorizeQStash(ctx.config, headers.get("upstash-signature"), bodyText, `${ctx.config.publicUrl ?? url.origin}${url.pathname}`);
        return ok(await bridge.endDueSessions(ctx));
      },
    },
  }),
};
