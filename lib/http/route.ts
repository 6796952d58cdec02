/**
 * The HTTP edge, shared by every function in api/: CORS, method dispatch, body limits, JSON
 * parsing, validation, bearer tokens, rate limits, and turning errors into problem documents.
 *
 * Web-standard throughout (`Request` in, `Response` out, event streams as a streaming body), so
 * the same function runs on Vercel and, through srvx, under lib/server.ts.
 */
import { randomUUID } from "node:crypto";
import type { z } from "zod";
import { contextOf, type Context } from "../context.js";
import { Problem, problems } from "../problem.js";
import { rateLimitHeaders, retryAfter, type RateLimits } from "../ratelimit.js";
import { LIMITS, SIZE_LIMITED_FIELDS } from "../schemas.js";
import { callerFor, callerForTicket } from "../signaling.js";
import { IdempotencyMismatch, RateLimited, StoreBusy, StoreUnavailable, type Answer, type Call, type Caller, type Once, type Window } from "../store/types.js";
import { contentTypeOf, readBody } from "./body.js";
import { clientAddress } from "./client-address.js";
import { corsHeaders } from "./cors.js";
import { requestOnce } from "./idempotency.js";
import { API_HEADERS } from "./security-headers.js";

type Method = "GET" | "POST" | "PATCH" | "DELETE";

export interface Input<Q, B> {
  ctx: Context;
  /** The request's URL, as its client sent it (its origin is where this deployment was reached). */
  url: URL;
  query: Q;
  body: B;
  /** The body's text as it came (a signature covers it, not its parse). */
  bodyText: string;
  /**
   * The authenticated caller, for routes with `auth: "peer"`, with what its request costs
   * (its charge) and which request it is (its idempotency key), for the store's steps.
   */
  call: Call;
  /** The request's idempotency key (the client's Idempotency-Key), for a route without a caller. */
  once?: Once;
  /** The raw bearer token, if any (for routes that check it themselves). */
  bearer: string | null;
  headers: Headers;
  /** For requests that wait: aborts when the client goes away, so long-polls and streams stop waiting. */
  signal: AbortSignal;
  /** The request's body was raw SDP (routes that accept it answer in kind). */
  sentSdp: boolean;
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
  /** Where the caller's call limit stands, when the request was charged (RateLimit headers). */
  window?: Window;
  /** The first answer to this request, given again (Idempotent-Replayed). */
  replayed?: boolean;
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
  /**
   * How a peer's request is charged against its call limit, in the store's step that verifies it:
   * "up-front" (the default: its first step); "if-mail" (a waiting read: by its first read if that
   * finds mail, else if a newer read supersedes it; CallCharge.ifMail); "none" (limits of its own).
   */
  charge?: (query: Q) => "up-front" | "if-mail" | "none";
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
/** A store's answer as a reply: its value as the body (none for 204), its window and whether it was a repeat. */
export const answered = ({ value, window, replayed }: Answer<unknown>, status = 200): Reply => ({
  status,
  ...(status === 204 ? {} : { body: value }),
  ...(window ? { window } : {}),
  ...(replayed ? { replayed } : {}),
});

/**
 * A function of api/ in Web-standard form: Vercel calls `fetch` as `export default { fetch }`
 * (streaming a body as it comes); lib/server.ts serves the same object through srvx.
 */
export interface Route {
  fetch(request: Request): Promise<Response>;
  readonly spec: Spec;
}

export function route(spec: Spec): Route {
  const allowed = Object.keys(spec) as Method[];

  const fetch = async (request: Request): Promise<Response> => {
    const { ctx, requestId, url, headers, logged } = await answering(request, allowed);
    let roomId: string | undefined;
    if (request.method === "OPTIONS") return logged(new ctx.Response(null, { status: 204, headers }));

    // Aborts when the client goes away (the request's own signal, or the event stream cancelled):
    // followed only for requests that wait, as following it costs the server a listener.
    const aborted = new AbortController();
    let release: (() => void) | null | undefined;
    try {
      const method = spec[request.method as Method];
      if (!method) throw problems.methodNotAllowed(allowed);
      const sentSdp = Boolean(method.acceptsSdp) && contentTypeOf(request) === "application/sdp";
      const query = validate(method.query, queryOf(url), "query");
      const read = method.body ? await readBody(request, LIMITS.requestBytes, { sdp: method.acceptsSdp }) : undefined;
      const body = method.body ? validate(method.body, sentSdp ? { ...queryOf(url), ...(read!.value as object) } : read!.value, "body") : undefined;
      const bearer = bearerOf(request);
      roomId = (query as { roomId?: string } | undefined)?.roomId ?? (body as { roomId?: string } | undefined)?.roomId;

      // A room named without a token: a join or a lookup, which guessers are limited in.
      const lookup = !method.auth && Boolean(roomId);
      const forwarded = ctx.config.trustProxy ? (request.headers.get("x-forwarded-for") ?? "") : undefined;
      // The connection's address where the server has one (srvx's `request.ip`); on Vercel the
      // platform writes it into X-Forwarded-For (TRUST_PROXY is 1 there).
      const address = `ip:${clientAddress((request as { ip?: string }).ip, forwarded, ctx.config.trustProxy)}`;
      if (lookup) {
        const refused = ctx.probes.refusedFor(address);
        if (refused) throw problems.rateLimited(refused);
      }

      let caller: Caller | undefined;
      if (method.auth === "peer") {
        try {
          const ticket = method.acceptsTicket && !bearer ? (query as { ticket?: string }).ticket : undefined;
          caller = ticket ? await callerForTicket(ctx, roomId ?? "", ticket) : callerFor(roomId ?? "", bearer);
        } catch (problem) {
          await charge(ctx, address, "calls", headers);
          throw problem;
        }
      }
      // Per verified peer; anyone else per address, so that forged tokens mint no limiter keys.
      // (Room creation and joins carry no token: they are always per address.)
      const limitKey = caller && ctx.verified.has(caller.tokenHash) ? `peer:${caller.tokenHash.slice(0, 24)}` : address;
      const limit = method.limit ?? "calls";
      // A peer's calls are charged by the store, in the step that verifies its token (one round
      // trip; a forged token spends nothing there, and its address is charged below instead).
      const inStore = limit === "calls" && Boolean(caller);
      const charging = method.charge?.(query) ?? "up-front";
      if (!inStore && charging === "up-front") await charge(ctx, limitKey, limit, headers);
      const callCharge = inStore && ctx.config.rateLimits.enabled && charging !== "none"
        ? { max: ctx.config.rateLimits.callsPerHour, windowMs: 3_600_000, ...(charging === "if-mail" ? { ifMail: true } : {}) }
        : undefined;
      const once = requestOnce(request, url, body, caller);
      const call: Call = caller ? { ...caller, ...(callCharge ? { charge: callCharge } : {}), ...(once ? { once } : {}) } : (undefined as unknown as Call);

      release = method.waits?.(query) ? ctx.waiting.enter(address) : undefined;
      if (release === null) throw problems.tooManyWaiting(ctx.config.waitingReadsPerAddress);
      if (release) request.signal?.addEventListener("abort", () => aborted.abort(), { once: true });

      try {
        const reply = await method.handle({ ctx, url, query, body, bodyText: read?.text ?? "", call, once, bearer, headers: request.headers, signal: aborted.signal, sentSdp });
        if (caller && reply.status < 300) ctx.verified.add(caller.tokenHash);
        if (reply.window) Object.assign(headers, rateLimitHeaders(reply.window, ctx.now()));
        if (reply.replayed) headers["idempotent-replayed"] = "true";
        if (reply.events) {
          // The stream holds its waiting slot, and is logged, until it ends.
          const ends = release;
          release = undefined;
          const response = new ctx.Response(eventStream(reply.events, (error) => toProblem(error, requestId, ctx), aborted, () => (ends?.(), logged(response, roomId))), {
            status: 200,
            headers: {
              ...headers,
              "content-type": "text/event-stream; charset=utf-8",
              // Proxies that buffer responses (nginx) pass this one through as it comes.
              "x-accel-buffering": "no",
            },
          });
          return response;
        }
        return logged(respond(ctx, reply, headers), roomId);
      } catch (error) {
        // Failed token guesses count against the guesser's address (once); so do room ID guesses.
        const chargedAddress = charging === "up-front" && !inStore && limitKey === address;
        if (error instanceof Problem && error.code === "invalid_token" && !chargedAddress) await charge(ctx, address, "calls", headers);
        // A wrong or missing join key is a guess like a wrong room ID.
        if (error instanceof Problem && GUESSES.has(error.code) && lookup) {
          const refused = await ctx.probes.miss(address);
          if (refused) throw problems.rateLimited(refused);
        }
        throw error;
      }
    } catch (error) {
      return logged(problemResponse(ctx, toProblem(error, requestId, ctx), headers), roomId);
    } finally {
      release?.();
    }
  };
  return { fetch, spec };
}

/**
 * What every answer starts from: the request's id, the API's security and CORS headers, and its
 * one log line once answered — never the query's values, the body, or any header but the method.
 */
async function answering(request: Request, allowed: string[]) {
  const ctx = await contextOf(request);
  const requestId = randomUUID();
  const started = performance.now();
  // srvx hands over the URL it has parsed already (`_url`); elsewhere it is parsed here.
  const url = (request as { _url?: URL })._url ?? new URL(request.url);
  const headers: Record<string, string> = {
    "x-request-id": requestId,
    ...API_HEADERS,
    ...corsHeaders(request, ctx.config.allowedOrigins, allowed),
    "cache-control": "no-store",
  };
  const logged = (response: Response, roomId?: string) => {
    ctx.log.info({
      requestId,
      method: request.method,
      route: url.pathname,
      status: response.status,
      durationMs: Math.round((performance.now() - started) * 10) / 10,
      ...(roomId ? { roomId } : {}),
    });
    return response;
  };
  return { ctx, requestId, url, headers, logged };
}

/** A path no function serves (the self-hosted server's; Vercel answers these itself). */
export async function notFound(request: Request): Promise<Response> {
  const { ctx, url, headers, logged } = await answering(request, []);
  return logged(problemResponse(ctx, problems.routeNotFound(url.pathname), headers));
}

/** Refusals that count against a lookup's guessing budget. */
const GUESSES = new Set(["room_not_found", "join_key_required", "join_key_invalid"]);

function toProblem(error: unknown, requestId: string, ctx: Context): Problem {
  if (error instanceof Problem) {
    if (error.code === "client_closed") ctx.log.info({ requestId, event: "client_closed" });
    return error;
  }
  if (error instanceof RateLimited) return problems.rateLimited(retryAfter(error.window.reset, ctx.now()), rateLimitHeaders(error.window, ctx.now()));
  if (error instanceof IdempotencyMismatch) return problems.idempotencyKeyReused();
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

async function charge(ctx: Context, key: string, which: keyof RateLimits, headers: Record<string, string>) {
  const result = await ctx.limits[which].limit(key);
  if (result.unchecked) return;
  Object.assign(headers, rateLimitHeaders(result, ctx.now()));
  if (!result.success) throw problems.rateLimited(retryAfter(result.reset, ctx.now()));
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

function queryOf(url: URL): Record<string, string> {
  const query: Record<string, string> = {};
  for (const [key, value] of url.searchParams) if (!(key in query)) query[key] = value;
  return query;
}

function bearerOf(request: Request): string | null {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(request.headers.get("authorization") ?? "");
  return match ? match[1] : null;
}

function respond({ Response }: Context, reply: Reply, headers: Record<string, string>): Response {
  const init = (contentType?: string) => ({
    status: reply.status,
    headers: { ...headers, ...reply.headers, ...(contentType ? { "content-type": contentType } : {}) },
  });
  if (reply.body === undefined) return new Response(null, init());
  if (reply.contentType) return new Response(String(reply.body), init(reply.contentType));
  return new Response(JSON.stringify(reply.body), init("application/json; charset=utf-8"));
}

const encoder = new TextEncoder();

/**
 * Server-sent events as a response body, written as they come. A failure once the stream has
 * begun ends it with a `problem` event; a reader that goes away aborts `aborted` (the events
 * stop waiting); `ended` runs once, however it ends.
 */
function eventStream(events: AsyncIterable<string>, problemFor: (error: unknown) => Problem, aborted: AbortController, ended: () => void) {
  const iterator = events[Symbol.asyncIterator]();
  let open = true;
  const end = () => {
    if (open) (open = false), ended();
  };
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        try {
          const next = await iterator.next();
          if (!open) return;
          if (next.done) {
            end();
            controller.close();
          } else controller.enqueue(encoder.encode(next.value));
        } catch (error) {
          if (!open) return;
          controller.enqueue(encoder.encode(`event: problem\ndata: ${JSON.stringify(problemFor(error))}\n\n`));
          end();
          controller.close();
        }
      },
      async cancel() {
        end();
        aborted.abort();
        await iterator.return?.(undefined);
      },
    },
    // Pull only when the reader asks: an event is taken from the store when it can be written.
    { highWaterMark: 0 },
  );
}

function problemResponse({ Response }: Context, problem: Problem, headers: Record<string, string>): Response {
  return new Response(JSON.stringify(problem), {
    status: problem.status,
    headers: { ...headers, ...problem.headers, "content-type": "application/problem+json; charset=utf-8" },
  });
}
