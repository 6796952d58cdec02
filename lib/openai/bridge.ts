/**
 * The OpenAI Realtime bridge: lets a room's host open a WebRTC session with OpenAI while the
 * API key stays on the server. Three ways in:
 *  - SDP proxy: the browser's offer in, OpenAI's answer out (`startSession`);
 *  - room mode: the AI joins the room as a peer and answers the host's offer through the
 *    signaling store, so the client code that connects a viewer connects the AI (`addAgent`);
 *  - ephemeral secret: a short-lived key for clients that connect to OpenAI themselves (`mintSecret`).
 * Every session is recorded in its room (at most OPENAI_MAX_SESSIONS_PER_ROOM) until hung up.
 */
import { nanoid } from "nanoid";
import type { Context } from "../context.js";
import { hashToken, newPeerId, newToken } from "../ids.js";
import { Problem, problems } from "../problem.js";
import type { CandidateInput } from "../schemas.js";
import * as signaling from "../signaling.js";
import { uncharged } from "../signaling.js";
import { StoreUnavailable, type Caller, type PeerInfo } from "../store/types.js";
import type { Preset } from "./presets.js";
import { endsGathering, withCandidates } from "./sdp.js";
import { apiOf, upstreamFor, type AiApi } from "./upstream.js";

interface SessionRecord {
  /** A minted client secret counts until it expires: the call it may open is out of our sight. */
  mode: "proxy" | "peer" | "secret";
  preset: string;
  callId?: string;
  /** Which OpenAI API the call is on (what ends it: a REST hangup, or the GPT-Live sideband); Realtime when absent. */
  api?: AiApi;
  /** Room mode: the AI peer, and its token's hash (so it can leave when its call ends by deadline). */
  peerId?: string;
  peerTokenHash?: string;
  startedAt: number;
}

/** How long the AI peer keeps collecting trickled candidates after the offer arrived. */
const CANDIDATE_WINDOW_MS = 1500;

export const newSessionId = () => `ses_${nanoid(20)}`;

export function choosePreset(ctx: Context, name: string | undefined): { name: string; preset: Preset } {
  const o = ctx.config.openai;
  const chosen = name ?? o.defaultPreset;
  if (!o.presets[chosen]) {
    throw new Problem(400, "unknown_preset", "Unknown preset", `No preset '${chosen}'; this server offers: ${o.allowedPresets.join(", ")}`);
  }
  if (!o.allowedPresets.includes(chosen)) throw problems.forbidden(`Preset '${chosen}' may not be chosen by clients`);
  return { name: chosen, preset: o.presets[chosen] };
}

/**
 * The bridge's store steps go as the host's plain calls: a session takes several (its record is
 * claimed, then filled in), none with the request's charge or idempotency key.
 */
async function record(ctx: Context, caller: Caller, sessionId: string, value: SessionRecord, expiresAt?: number) {
  const { value: put } = await ctx.store.putSession(uncharged(caller), sessionId, JSON.stringify(value), ctx.config.openai.maxSessionsPerRoom, ctx.now(), expiresAt);
  if (put === "limit") {
    throw new Problem(429, "too_many_sessions", "Too many AI sessions", `This room already has ${ctx.config.openai.maxSessionsPerRoom} AI sessions; hang one up first`);
  }
  if (put === "forbidden") throw problems.forbidden("Only the room's host may start AI sessions");
  if (put !== "ok") throw problems.invalidToken(); // a missing room too: see signaling's deny()
}

async function forget(ctx: Context, caller: Caller, sessionId: string): Promise<SessionRecord | null> {
  const { value: removed } = await ctx.store.removeSession(uncharged(caller), sessionId, ctx.now());
  if (removed === "forbidden") throw problems.forbidden("Only the room's host may end AI sessions");
  if (typeof removed === "string") throw problems.invalidToken();
  return removed.record ? (JSON.parse(removed.record) as SessionRecord) : null;
}

/**
 * A call just opened is kept: its record filled in and its end scheduled. If either fails the
 * call is hung up at once, so none runs on unrecorded or past its cap.
 */
async function keepCall(ctx: Context, host: Caller, sessionId: string, call: SessionRecord & { callId: string }, origin: string) {
  try {
    await record(ctx, host, sessionId, call);
    await scheduleEnd(ctx, host.roomId, sessionId, origin);
  } catch (error) {
    await (await upstreamFor(ctx)).hangup(call.callId, call.api ?? "realtime").catch(() => {});
    throw error;
  }
}

/**
 * SDP proxy: forwards the browser's complete offer with the server's key; returns OpenAI's
 * answer. `origin` is where this deployment is reached (for a callback at the call's deadline).
 */
export async function startSession(ctx: Context, caller: Caller, offerSdp: string, presetName: string | undefined, origin: string) {
  const { name, preset } = choosePreset(ctx, presetName);
  const sessionId = newSessionId();
  // Claim a place first, so concurrent starts cannot exceed the room's cap.
  await record(ctx, caller, sessionId, { mode: "proxy", preset: name, startedAt: ctx.now() });
  try {
    const upstream = await upstreamFor(ctx);
    const { answerSdp, callId } = await upstream.connect(offerSdp, preset);
    await keepCall(ctx, caller, sessionId, { mode: "proxy", preset: name, callId, api: apiOf(preset), startedAt: ctx.now() }, origin);
    return { sessionId, sdp: answerSdp, preset: name, upstream: upstream.kind };
  } catch (error) {
    await forget(ctx, caller, sessionId).catch(() => {});
    throw error;
  }
}

/** Waits for the host's offer to the AI peer, riding out store hiccups until the deadline. */
async function offerFor(ctx: Context, agent: Caller, deadline: number, signal?: AbortSignal) {
  for (let failures = 0; ctx.now() < deadline && !signal?.aborted; ) {
    try {
      const wait = Math.min(25_000, deadline - ctx.now());
      const { messages } = (await signaling.take(ctx, agent, "offer", { waitMs: wait, signal })).value;
      const offer = messages.at(-1);
      if (offer) return offer as signaling.Message & { description: { sdp: string } };
    } catch (error) {
      if (!(error instanceof StoreUnavailable)) throw error;
      await new Promise((r) => setTimeout(r, Math.min(2000, 200 * 2 ** failures++)));
    }
  }
  const seconds = Math.round(ctx.config.openai.offerTimeoutMs / 1000);
  throw new Problem(504, "offer_timeout", "No offer received from host", `The AI peer received no offer from the host within ${seconds} s`);
}

/** The candidates the host trickled to the AI peer, until it signals the end or the window closes. */
async function trickledCandidates(ctx: Context, agent: Caller, signal?: AbortSignal) {
  const collected: CandidateInput["candidates"] = [];
  const until = ctx.now() + CANDIDATE_WINDOW_MS;
  while (ctx.now() < until && !collected.some(endsGathering)) {
    const { messages } = (await signaling.take(ctx, agent, "candidate", { waitMs: until - ctx.now(), signal })).value;
    for (const m of messages) collected.push(...(m.candidates as CandidateInput["candidates"]));
  }
  return collected;
}

/**
 * Room mode: the AI joins the host's room as a peer, takes the offer the host sends it (with
 * the candidates trickled after it), has OpenAI answer it, and answers the host as that peer.
 */
export async function addAgent(ctx: Context, host: Caller, presetName: string | undefined, origin: string, signal?: AbortSignal) {
  const { name, preset } = choosePreset(ctx, presetName);
  const sessionId = newSessionId();
  const now = ctx.now();
  await record(ctx, host, sessionId, { mode: "peer", preset: name, startedAt: now });
  const peer: PeerInfo = { peerId: newPeerId(), role: "agent", name: `AI · ${name}`, joinedAt: now };
  const token = newToken(peer.peerId);
  const agent: Caller = { roomId: host.roomId, peerId: peer.peerId, tokenHash: hashToken(token) };
  let joined = false;
  try {
    const announce = { type: "peer-joined", body: JSON.stringify({ type: "peer-joined", from: peer.peerId, at: now, peer }) };
    // The host brings it in: no key, lock or lobby applies to the host's own AI peer.
    const { value: join } = await ctx.store.joinRoom(host.roomId, peer, agent.tokenHash, announce, now, { byHost: true });
    if (join === "room-missing") throw problems.roomNotFound(host.roomId);
    if (typeof join === "string" || "waiting" in join) throw problems.roomFull(0);
    joined = true;
    const offer = await offerFor(ctx, agent, now + ctx.config.openai.offerTimeoutMs, signal);
    const candidates = await trickledCandidates(ctx, agent, signal);
    const upstream = await upstreamFor(ctx);
    const { answerSdp, callId } = await upstream.connect(withCandidates(offer.description.sdp, candidates), preset);
    await keepCall(ctx, host, sessionId, { mode: "peer", preset: name, callId, api: apiOf(preset), peerId: peer.peerId, peerTokenHash: agent.tokenHash, startedAt: now }, origin);
    await signaling.sendDescription(ctx, agent, host.peerId, { type: "answer", sdp: answerSdp });
    return { sessionId, peerId: peer.peerId, preset: name, upstream: upstream.kind };
  } catch (error) {
    await forget(ctx, host, sessionId).catch(() => {});
    if (joined) await signaling.leaveRoom(ctx, uncharged(host), peer.peerId).catch(() => {});
    throw error;
  }
}

/**
 * An ephemeral client secret, for clients that connect to OpenAI themselves. Only the host may
 * mint, and each secret takes one of the room's session places until it expires.
 */
export async function mintSecret(ctx: Context, host: Caller, presetName?: string) {
  const { name, preset } = choosePreset(ctx, presetName);
  if (preset.type === "live") {
    throw new Problem(400, "no_client_secret", "No client secret for a GPT-Live preset", `Preset '${name}' is a GPT-Live session: GPT-Live has no client secrets (the server starts it with POST /api/session)`);
  }
  const ttl = ctx.config.openai.secretTtlSeconds;
  const sessionId = newSessionId();
  await record(ctx, host, sessionId, { mode: "secret", preset: name, startedAt: ctx.now() }, ctx.now() + ttl * 1000);
  try {
    const upstream = await upstreamFor(ctx);
    const secret = await upstream.mintSecret(preset, ttl);
    return {
      value: secret.value,
      expiresAt: secret.expiresAt,
      preset: name,
      upstream: upstream.kind,
      // Where a client posts its offer (raw SDP, the secret as bearer): OpenAI's own endpoint,
      // never the server's OPENAI_BASE_URL (which may be an internal gateway).
      callsUrl: upstream.kind === "openai" ? ctx.config.openai.clientCallsUrl : null,
    };
  } catch (error) {
    await forget(ctx, host, sessionId).catch(() => {});
    throw error;
  }
}

/** Where QStash calls back at a call's deadline. */
export const EXPIRE_PATH = "/api/session/expire";

/**
 * Every AI call ends by OPENAI_MAX_SESSION_SECONDS (OpenAI's own limit is an hour, billed
 * throughout). Its deadline goes into the store's index, and something must wake at it: with
 * QStash configured, a delayed message to this deployment's POST /api/session/expire (any
 * plan); a long-lived process (npm start) also sets a timer; Vercel Cron calling GET
 * /api/session/expire is the third way. Each ends whatever is due (`endDueSessions`).
 */
async function scheduleEnd(ctx: Context, roomId: string, sessionId: string, origin: string) {
  const { maxSessionMs } = ctx.config.openai;
  await ctx.store.scheduleSessionEnd(roomId, sessionId, ctx.now() + maxSessionMs);
  if (ctx.config.qstash) {
    const { wakeLater } = await import("./qstash.js");
    await wakeLater(ctx.config.qstash, `${ctx.config.publicUrl ?? origin}${EXPIRE_PATH}`, Math.ceil(maxSessionMs / 1000), { roomId, sessionId });
  }
  if (ctx.config.serverless) return;
  setTimeout(
    () => void endExpired(ctx, roomId, sessionId).catch((error: Error) => ctx.log.warn({ event: "session_end_failed", roomId, sessionId, error: error.message })),
    maxSessionMs,
  ).unref();
}

/** Ends a session past its deadline (if it has not ended already): its call hangs up, its AI peer leaves. */
async function endExpired(ctx: Context, roomId: string, sessionId: string): Promise<boolean> {
  const stored = await ctx.store.endSession(roomId, sessionId, ctx.now());
  if (!stored) return false;
  const session = JSON.parse(stored) as SessionRecord;
  ctx.log.info({ event: "session_expired", roomId, sessionId });
  if (session.callId) await hangupClosed(ctx, roomId, [stored]);
  if (session.peerId && session.peerTokenHash) {
    await signaling.leaveRoom(ctx, { roomId, peerId: session.peerId, tokenHash: session.peerTokenHash }, session.peerId).catch(() => {});
  }
  return true;
}

/** Ends every AI call past its deadline, in any room (Vercel Cron's entry point). */
export async function endDueSessions(ctx: Context) {
  let ended = 0;
  for (const { roomId, sessionId } of await ctx.store.dueSessions(ctx.now(), 100)) if (await endExpired(ctx, roomId, sessionId)) ended++;
  return { ended };
}

/**
 * A closed room's sessions: hangs up each call upstream, so none outlives its room (OpenAI would
 * keep it, and bill it, until the browser's side drops). Failures are logged, not raised: the
 * room is already gone.
 */
export async function hangupClosed(ctx: Context, roomId: string, records: string[]) {
  const calls = records.map((r) => JSON.parse(r) as SessionRecord).filter((s): s is SessionRecord & { callId: string } => Boolean(s.callId));
  const upstream = await upstreamFor(ctx);
  await Promise.all(
    calls.map(({ callId, api }) =>
      upstream.hangup(callId, api ?? "realtime").catch((error: Error) => ctx.log.warn({ event: "hangup_failed", roomId, callId, error: error.message })),
    ),
  );
}

/** Ends a session: hangs up upstream and, in room mode, removes the AI peer. */
export async function hangup(ctx: Context, host: Caller, sessionId: string) {
  const session = await forget(ctx, host, sessionId);
  if (!session) throw new Problem(404, "session_not_found", "Session not found", `No AI session '${sessionId}' in this room`);
  if (session.callId) await (await upstreamFor(ctx)).hangup(session.callId, session.api ?? "realtime");
  if (session.peerId) await signaling.leaveRoom(ctx, uncharged(host), session.peerId).catch(() => {});
}
