/**
 * The HTTP edge, shared by every function in api/: CORS, method dispatch, body limits, JSON
 * parsing, validation, bearer tokens, rate limits, and turning errors into problem documents.
 *
 * Handlers use only the node:http surface of VercelRequest/VercelResponse (they read the raw
 * body stream themselves), so the same function runs on Vercel and under lib/server.ts.
 */
import { randomUUID } from "node:crypto";
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from "node:http";
import type { z } from "zod";
import { contextOf, type Context } from "../context.js";
import { Problem, problems } from "../problem.js";
import { rateLimitHeaders, retryAfter, type RateLimits } from "../ratelimit.js";
import { LIMITS, SIZE_LIMITED_FIELDS } from "../schemas.js";
import { callerFor, callerForTicket } from "../signaling.js";
import { RateLimited, StoreBusy, StoreUnavailable, type Caller } from "../store/types.js";
import { contentTypeOf, readBody } from "./body.js";
import { clientAddress } from "./client-address.js";
import { applyCors } from "./cors.js";
import { API_HEADERS } from "./security-headers.js";

type Method = "GET" | "POST" | "PATCH" | "DELETE";

export interface Input<Q, B> {
  ctx: Context;
  query: Q;
  body: B;
  /** The authenticated caller, for routes with `auth: "peer"`. */
  caller: Caller;
  /** The raw bearer token, if any (for routes that check it themselves). */
  bearer: string | null;
  headers: IncomingHttpHeaders;
  /** Aborts when the client goes away: long-polls stop waiting. */
  signal: AbortSignal;
  /** The request's body was raw SDP (routes that accept it answer in kind). */
  sentSdp: boolean;
  /**
   * Charges the (by now verified) caller's call, for routes that charge only once they know the
   * request does work (`chargesItself`); throws 429 past the limit.
   */
  chargeCall(): Promise<void>;
}

export interface Reply {
  status: number;
  /** JSON; or, with `contentType`, text sent as it is. */
  body?: unknown;
  /**
   * Server-sent events, written as they come (the body is not used). A failure once the stream
   * has begun ends it with a `problem` event holding the problem document.
   */
  events?: AsyncIterable<string>;
  contentType?: string;
  headers?: Record<string, string>;
}

export interface MethodSpec<Q, B> {
  /** For the OpenAPI document: what the method does, and each success status's content. */
  summary: string;
  responses: Record<number, string>;
  /** For the OpenAPI document: problems this method answers besides those every route of its kind does. */
  problems?: Record<number, string>;
  query?: z.ZodType<Q>;
  body?: z.ZodType<B>;
  /** "peer": a token of the room named by `roomId` (query or body) is required. */
  auth?: "peer";
  /** Also authenticate by a stream ticket in the query (`ticket`), for clients that cannot send headers. */
  acceptsTicket?: boolean;
  /** Answers with server-sent events (`Reply.events`), resumable with a Last-Event-ID header. */
  eventStream?: boolean;
  /** Which rate limit applies: room creation or joins per address, AI sessions per host, or calls (the default). */
  limit?: "rooms" | "joins" | "calls" | "sessions";
  /** Requests this says yes to are not charged up front: the handler charges them through `chargeCall` when they do work. */
  chargesItself?: (query: Q) => boolean;
  /** Requests this says yes to may wait (long-poll): they count against the address's waiting reads. */
  waits?: (query: Q) => boolean;
  /** Also take the body as raw `application/sdp` (query parameters fill in the other fields). */
  acceptsSdp?: boolean;
  handle(input: Input<Q, B>): Promise<Reply>;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Spec = Partial<Record<Method, MethodSpec<any, any>>>;

export const ok = (body: unknown, status = 200): Reply => ({ status, body });
export const noContent = (): Reply => ({ status: 204 });

export type Handler = ((req: IncomingMessage, res: ServerResponse) => Promise<void>) & { readonly spec: Spec };

export function route(spec: Spec): Handler {
  const allowed = Object.keys(spec) as Method[];

  const handler = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const ctx = contextOf(req);
    const requestId = randomUUID();
    const started = performance.now();
    let roomId: string | undefined;
    res.setHeader("x-request-id", requestId);
    for (const [name, value] of Object.entries(API_HEADERS)) res.setHeader(name, value);
    // One line per request: never the query's values, the body, or any header but the method.
    res.on("finish", () =>
      ctx.log.info({
        requestId,
        method: req.method,
        route: new URL(req.url ?? "/", "http://localhost").pathname,
        status: res.statusCode,
        durationMs: Math.round((performance.now() - started) * 10) / 10,
        ...(roomId ? { roomId } : {}),
      }),
    );
    applyCors(req, res, ctx.config.allowedOrigins, allowed);
    if (req.method === "OPTIONS") return send(res, { status: 204 });

    const aborted = new AbortController();
    res.on("close", () => aborted.abort());
    let release: (() => void) | null | undefined;
    try {
      const method = spec[req.method as Method];
      if (!method) throw problems.methodNotAllowed(allowed);
      const sentSdp = Boolean(method.acceptsSdp) && contentTypeOf(req) === "application/sdp";
      const query = validate(method.query, queryOf(req), "query");
      const raw = method.body ? await readBody(req, LIMITS.requestBytes, { sdp: method.acceptsSdp }) : undefined;
      const body = method.body ? validate(method.body, sentSdp ? { ...queryOf(req), ...(raw as object) } : raw, "body") : undefined;
      const bearer = bearerOf(req);
      roomId = (query as { roomId?: string } | undefined)?.roomId ?? (body as { roomId?: string } | undefined)?.roomId;

      // A room named without a token: a join or a lookup, which guessers are limited in.
      const lookup = !method.auth && Boolean(roomId);
      const forwarded = ctx.config.trustProxy ? String(req.headers["x-forwarded-for"] ?? "") : undefined;
      const address = `ip:${clientAddress(req.socket.remoteAddress, forwarded, ctx.config.trustProxy)}`;
      if (lookup) {
        const refused = ctx.probes.refusedFor(address);
        if (refused) throw problems.rateLimited(refused);
      }

      let caller = undefined as unknown as Caller;
      if (method.auth === "peer") {
        try {
          const ticket = method.acceptsTicket && !bearer ? (query as { ticket?: string }).ticket : undefined;
          caller = ticket ? await callerForTicket(ctx, roomId ?? "", ticket) : callerFor(roomId ?? "", bearer);
        } catch (problem) {
          await charge(ctx, address, "calls", res);
          throw problem;
        }
      }
      // Per verified peer; anyone else per address, so that forged tokens mint no limiter keys.
      // (Room creation and joins carry no token: they are always per address.)
      const peerKey = caller ? `peer:${caller.tokenHash.slice(0, 24)}` : address;
      const perPeer = caller && ctx.verified.has(caller.tokenHash);
      const limitKey = perPeer ? peerKey : address;
      const upFront = !method.chargesItself?.(query);
      const limit = method.limit ?? "calls";
      // A peer's calls are charged by the store, in the step that verifies its token (one round
      // trip; a forged token spends nothing there, and its address is charged below instead).
      const inStore = limit === "calls" && Boolean(caller);
      const callCharge = () => ({ max: ctx.config.rateLimits.callsPerHour, windowMs: 3_600_000 });
      if (inStore && upFront && ctx.config.rateLimits.enabled) caller.charge = callCharge();
      else if (upFront && !inStore) await charge(ctx, limitKey, limit, res);

      release = method.waits?.(query) ? ctx.waiting.enter(address) : undefined;
      if (release === null) throw problems.tooManyWaiting(ctx.config.waitingReadsPerAddress);

      try {
        const reply = await method.handle({
          ctx, query, body, caller, bearer, headers: req.headers, signal: aborted.signal, sentSdp,
          chargeCall: async () => {
            if (!ctx.config.rateLimits.enabled) return;
            caller.charge = callCharge();
            await ctx.store.chargeCall(caller, ctx.now());
          },
        });
        if (caller && reply.status < 300) ctx.verified.add(caller.tokenHash);
        if (caller?.charge?.window) setHeaders(res, rateLimitHeaders(caller.charge.window, ctx.now()));
        if (reply.events) return await stream(res, reply.events, (error) => toProblem(error, requestId, ctx));
        return send(res, reply);
      } catch (error) {
        // Failed token guesses count against the guesser's address (once); so do room ID guesses.
        const chargedAddress = upFront && !inStore && limitKey === address;
        if (error instanceof Problem && error.code === "invalid_token" && !chargedAddress) await charge(ctx, address, "calls", res);
        // A wrong or missing join key is a guess like a wrong room ID.
        if (error instanceof Problem && GUESSES.has(error.code) && lookup) {
          const refused = await ctx.probes.miss(address);
          if (refused) throw problems.rateLimited(refused);
        }
        throw error;
      }
    } catch (error) {
      return sendProblem(res, toProblem(error, requestId, ctx));
    } finally {
      release?.();
    }
  };
  return Object.assign(handler, { spec });
}

/** Refusals that count against a lookup's guessing budget. */
const GUESSES = new Set(["room_not_found", "join_key_required", "join_key_invalid"]);

function toProblem(error: unknown, requestId: string, ctx: Context): Problem {
  if (error instanceof Problem) {
    if (error.code === "client_closed") ctx.log.info({ requestId, event: "client_closed" });
    return error;
  }
  if (error instanceof RateLimited) return problems.rateLimited(retryAfter(error.window.reset, ctx.now()), rateLimitHeaders(error.window, ctx.now()));
  if (error instanceof StoreBusy) return problems.storeBusy();
  if (error instanceof StoreUnavailable) {
    // Upstash errors quote the whole command (token hashes, SDP): log only what went wrong.
    const cause = String((error.cause as Error)?.message ?? error.cause).split(", command was:")[0];
    ctx.log.error({ requestId, error: "store_unavailable", cause });
    return problems.storeUnavailable();
  }
  ctx.log.error({ requestId, error: String((error as Error)?.stack ?? error) });
  return problems.internal();
}

async function charge(ctx: Context, key: string, which: keyof RateLimits, res: ServerResponse) {
  const result = await ctx.limits[which].limit(key);
  if (result.unchecked) return;
  setHeaders(res, rateLimitHeaders(result, ctx.now()));
  if (!result.success) throw problems.rateLimited(retryAfter(result.reset, ctx.now()));
}

function setHeaders(res: ServerResponse, headers: Record<string, string>) {
  for (const [name, value] of Object.entries(headers)) res.setHeader(name, value);
}

function validate<T>(schema: z.ZodType<T> | undefined, value: unknown, where: "query" | "body"): T {
  if (!schema) return undefined as T;
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const errors = parsed.error.issues.map((issue) => ({
    field: issue.path.length ? issue.path.join(".") : where,
    message: issue.message,
  }));
  const first = errors[0];
  const detail = `${first.field}: ${first.message}`;
  const tooBig = parsed.error.issues.some((i) => i.code === "too_big" && SIZE_LIMITED_FIELDS.has(String(i.path.at(-1))));
  throw tooBig ? problems.tooLarge(detail, errors) : problems.invalidRequest(detail, errors);
}

function queryOf(req: IncomingMessage): Record<string, string> {
  const params = new URL(req.url ?? "/", "http://localhost").searchParams;
  const query: Record<string, string> = {};
  for (const [key, value] of params) if (!(key in query)) query[key] = value;
  return query;
}

function bearerOf(req: IncomingMessage): string | null {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? "");
  return match ? match[1] : null;
}

function send(res: ServerResponse, reply: Reply) {
  if (res.headersSent || res.destroyed) return;
  for (const [name, value] of Object.entries(reply.headers ?? {})) res.setHeader(name, value);
  res.setHeader("cache-control", "no-store");
  if (reply.body === undefined) {
    res.writeHead(reply.status).end();
    return;
  }
  if (reply.contentType) {
    res.writeHead(reply.status, { "content-type": reply.contentType }).end(String(reply.body));
    return;
  }
  res.writeHead(reply.status, { "content-type": "application/json; charset=utf-8" }).end(JSON.stringify(reply.body));
}

async function stream(res: ServerResponse, events: AsyncIterable<string>, problemFor: (error: unknown) => Problem) {
  res.writeHead(200, {
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-store",
    // Proxies that buffer responses (nginx) pass this one through as it comes.
    "x-accel-buffering": "no",
  });
  try {
    for await (const text of events) {
      if (res.destroyed) break;
      res.write(text);
    }
  } catch (error) {
    if (!res.destroyed) res.write(`event: problem\ndata: ${JSON.stringify(problemFor(error))}\n\n`);
  }
  res.end();
}

function sendProblem(res: ServerResponse, problem: Problem) {
  if (res.headersSent || res.destroyed) return;
  for (const [name, value] of Object.entries(problem.headers)) res.setHeader(name, value);
  res.setHeader("cache-control", "no-store");
  res.writeHead(problem.status, { "content-type": "application/problem+json; charset=utf-8" }).end(JSON.stringify(problem));
}
