/**
 * The HTTP edge as clients meet it: body size and media type, JSON and SDP bodies, bearer
 * parsing, response headers, and rate-limit headers. One store is enough: none of this
 * reaches it differently on Redis.
 */
import { request } from "node:http";
import { connect } from "node:net";
import { afterAll, describe, expect, it } from "vitest";
import { bindContext, createContext } from "../lib/context.js";
import { routes } from "../lib/routes/index.js";
import { LIMITS } from "../lib/schemas.js";
import { apiClient, createRoom, useHarness, type Harness } from "./support/harness.js";

interface Raw {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: any;
}

/** A request with exactly these headers and body (chunked when no content-length is given). */
function raw(base: string, method: string, path: string, headers: Record<string, string>, body?: string | Buffer): Promise<Raw> {
  return new Promise((resolve, reject) => {
    const req = request(new URL(path, base), { method, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8");
        let parsed: unknown = text;
        try {
          parsed = JSON.parse(text);
        } catch {
          // not JSON: kept as text
        }
        resolve({ status: res.statusCode!, headers: res.headers, body: parsed });
      });
    });
    req.on("error", reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

/** Writes `head` on a raw socket and returns what comes back before the server closes or 2 s pass. */
function headOnly(base: string, head: string): Promise<string> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    let got = "";
    const socket = connect(Number(port), hostname, () => socket.write(head.replace("HTTP/1.1\r\n", `HTTP/1.1\r\nhost: ${hostname}\r\n`)));
    socket.on("data", (d) => {
      got += d.toString("utf8");
      if (/\r\n\r\n[\s\S]*\}$/.test(got)) socket.destroy();
    });
    socket.on("close", () => resolve(got));
    socket.on("error", reject);
    setTimeout(() => socket.destroy(), 2000);
  });
}

describe("the HTTP edge", () => {
  let h: Harness;
  const test = useHarness("memory", (started) => (h = started), { RATE_LIMIT_ROOMS_PER_HOUR: "1000" });

  test("refuses a body over the limit, declared or streamed, with 413 saying how large", async () => {
    // Refused on the declared length alone, before any of the body is read.
    const declared = await headOnly(h.url, `POST /api/rooms HTTP/1.1\r\ncontent-type: application/json\r\ncontent-length: ${LIMITS.requestBytes + 1}\r\n\r\n{}`);
    expect(declared).toContain("HTTP/1.1 413 ");
    expect(declared).toContain(`"detail":"Request body is ${LIMITS.requestBytes + 1} bytes; the limit is ${LIMITS.requestBytes}"`);
    const streamed = await raw(h.url, "POST", "/api/rooms", { "content-type": "application/json", "transfer-encoding": "chunked" }, Buffer.alloc(LIMITS.requestBytes + 1, 32));
    expect([streamed.status, streamed.body.detail]).toEqual([413, `Request body exceeds ${LIMITS.requestBytes} bytes`]);
    // Exactly at the limit is fine (spaces around an empty object).
    const atLimit = await raw(h.url, "POST", "/api/rooms", { "content-type": "application/json" }, `{}${" ".repeat(LIMITS.requestBytes - 2)}`);
    expect(atLimit.status).toBe(201);
  });

  test("takes JSON by its media type, parameters and +json included, and says what it wanted otherwise", async () => {
    for (const type of ["application/json", "Application/JSON; charset=utf-8", "application/merge-patch+json"]) {
      expect((await raw(h.url, "POST", "/api/rooms", { "content-type": type }, '{"name":"Ada"}')).status, type).toBe(201);
    }
    const plain = await raw(h.url, "POST", "/api/rooms", { "content-type": "text/plain" }, '{"name":"Ada"}');
    expect([plain.status, plain.body.code, plain.body.detail]).toEqual([415, "unsupported_media_type", "Send 'application/json' (got 'text/plain')"]);
    expect((await raw(h.url, "POST", "/api/rooms", {}, '{"name":"Ada"}')).body.detail).toBe("Send 'application/json' (got 'none')");
    const host = await createRoom(apiClient(h.url));
    const session = await raw(h.url, "POST", `/api/session?roomId=${host.roomId}`, { "content-type": "text/plain", authorization: `Bearer ${host.token}` }, "v=0");
    expect(session.body.detail).toBe("Send 'application/json' or 'application/sdp' (got 'text/plain')");
    // An empty body is {}: every field of a new room is optional.
    expect((await raw(h.url, "POST", "/api/rooms", {}, "")).status).toBe(201);
  });

  test("names the body as the field when the whole body is wrong, and calls a body too large when one part is, whatever else is wrong", async () => {
    const list = await raw(h.url, "POST", "/api/rooms", { "content-type": "application/json" }, "[1,2]");
    expect([list.status, list.body.code, list.body.errors[0].field]).toEqual([400, "invalid_request", "body"]);
    const host = await createRoom(apiClient(h.url));
    const big = { roomId: host.roomId, to: "NOT AN ID", description: { type: "offer", sdp: "v".repeat(LIMITS.sdpBytes + 1) } };
    const both = await raw(h.url, "POST", "/api/offer", { "content-type": "application/json", authorization: `Bearer ${host.token}` }, JSON.stringify(big));
    expect([both.status, both.body.code]).toEqual([413, "payload_too_large"]);
  });

  test("names what is wrong with a body that is not JSON or not UTF-8", async () => {
    const broken = await raw(h.url, "POST", "/api/rooms", { "content-type": "application/json" }, '{"name":');
    expect([broken.status, broken.body.code]).toEqual([400, "invalid_json"]);
    expect(broken.body.detail).toMatch(/^Request body is not valid JSON: /);
    const latin1 = await raw(h.url, "POST", "/api/rooms", { "content-type": "application/json" }, Buffer.from([0x7b, 0x22, 0xe9, 0x22, 0x7d]));
    expect([latin1.status, latin1.body.detail]).toEqual([400, "Request body is not valid UTF-8"]);
  });

  test("takes a raw SDP offer where the route allows it, with the room in the query", async () => {
    const host = await createRoom(apiClient(h.url));
    // Raw SDP in, raw SDP out (from the simulated upstream), as OpenAI's own calls endpoint.
    const sdp = await raw(h.url, "POST", `/api/session?roomId=${host.roomId}`, { "content-type": "application/sdp", authorization: `Bearer ${host.token}` }, "v=0\r\n");
    expect([sdp.status, sdp.headers["content-type"]]).toEqual([201, "application/sdp"]);
    expect(sdp.body).toMatch(/^v=0\r\n/);
    expect(sdp.headers["x-session-id"]).toMatch(/^ses_/);
    expect(sdp.headers.location).toBe(`/api/session?roomId=${host.roomId}&id=${sdp.headers["x-session-id"]}`);
    // The same text as JSON without a roomId is a different mistake.
    const json = await raw(h.url, "POST", `/api/session?roomId=${host.roomId}`, { "content-type": "application/json", authorization: `Bearer ${host.token}` }, '{"sdp":"v=0"}');
    expect([json.status, json.body.code]).toEqual([400, "invalid_request"]);
  });

  test("reads the bearer token in any case and spacing, and only after 'Bearer'", async () => {
    const host = await createRoom(apiClient(h.url));
    const peers = (authorization: string) => raw(h.url, "GET", `/api/peers?roomId=${host.roomId}`, { authorization });
    for (const header of [`Bearer ${host.token}`, `bearer ${host.token}`, `Bearer   ${host.token}  `]) expect((await peers(header)).status, header).toBe(200);
    for (const header of [`xBearer ${host.token}`, `Bearer${host.token}`, `Token ${host.token}`, `Bearer ${host.token} ${host.token}`]) expect((await peers(header)).status, header).toBe(401);
  });

  test("marks every answer uncacheable and typed: JSON, problems, and none for 204", async () => {
    const created = await raw(h.url, "POST", "/api/rooms", { "content-type": "application/json" }, "{}");
    expect([created.headers["cache-control"], created.headers["content-type"]]).toEqual(["no-store", "application/json; charset=utf-8"]);
    const problem = await raw(h.url, "GET", "/api/peers?roomId=zzzzzzzzzz", {});
    expect([problem.headers["cache-control"], problem.headers["content-type"]]).toEqual(["no-store", "application/problem+json; charset=utf-8"]);
    // A repeated query parameter: the first counts.
    const first = await raw(h.url, "GET", `/api/diagnostics?roomId=zzzzzzzzzz&roomId=${created.body.roomId}`, {});
    expect(first.body.code).toBe("room_not_found");
    const closed = await raw(h.url, "DELETE", `/api/rooms?roomId=${created.body.roomId}`, { authorization: `Bearer ${created.body.token}` });
    expect([closed.status, closed.headers["cache-control"], closed.headers["content-type"], closed.body]).toEqual([204, "no-store", undefined, ""]);
  });

  test("answers a path nothing serves with a 404 problem a browser on another origin can read, with its request id", async () => {
    for (const path of ["/api/nothing-here", "/api/offer/extra", "/no-such-page.html"]) {
      const missing = await raw(h.url, "GET", path, { origin: "https://app.example" });
      expect([missing.status, missing.body.code, missing.body.detail], path).toEqual([404, "not_found", `No route for ${path}`]);
      expect(missing.headers["x-request-id"], path).toMatch(/^[0-9a-f-]{36}$/);
      expect([missing.headers["access-control-allow-origin"], missing.headers["x-content-type-options"]], path).toEqual(["*", "nosniff"]);
    }
    // A request line no URL can be made of is answered too, and the server goes on.
    expect(await headOnly(h.url, "GET //[ HTTP/1.1\r\n\r\n")).toMatch(/^HTTP\/1\.1 (400|404) /);
    expect((await raw(h.url, "GET", "/api/diagnostics", {})).status).toBe(200);
  });
});

describe("rate-limit headers", () => {
  let h: Harness;
  const test = useHarness("memory", (started) => (h = started), { RATE_LIMIT_ROOMS_PER_HOUR: "2" });

  test("count down, then a 429 says when to come back, in seconds within the window", async () => {
    const create = () => raw(h.url, "POST", "/api/rooms", { "content-type": "application/json", "x-forwarded-for": "198.51.100.7" }, "{}");
    const first = await create();
    expect([first.headers["ratelimit-limit"], first.headers["ratelimit-remaining"]]).toEqual(["2", "1"]);
    const reset = Number(first.headers["ratelimit-reset"]);
    expect(reset).toBeGreaterThan(0);
    expect(reset).toBeLessThanOrEqual(3600);
    await create();
    const refused = await create();
    expect([refused.status, refused.body.code, refused.headers["ratelimit-remaining"]]).toEqual([429, "rate_limited", "0"]);
    // Retry-After is when the window resets (at least a second), as RateLimit-Reset says.
    const retryAfter = Number(refused.headers["retry-after"]);
    expect(retryAfter).toBe(Math.max(1, Number(refused.headers["ratelimit-reset"])));
    expect(retryAfter).toBeLessThanOrEqual(3600);
  });
});

/**
 * The functions as Vercel's runtime calls them: `fetch` with a Web Request (a body that is a
 * stream of its own, no socket behind it) and a Response back, with no adapter in between.
 */
describe("the functions as Vercel calls them", async () => {
  const ctx = await createContext({ STORE: "memory", LOG_LEVEL: "warn", ICE_SERVERS: "[]", WAITING_READS_PER_ADDRESS: "1" });
  afterAll(() => ctx.store.close());
  const call = (path: string, init: RequestInit & { duplex?: "half" } = {}) => {
    const request = new Request(`https://signalbox.example${path}`, init);
    bindContext(request, ctx);
    return routes[new URL(request.url).pathname as keyof typeof routes].fetch(request);
  };
  /** A body sent in pieces, as a client streaming an upload does (no content-length). */
  const chunked = (...pieces: Uint8Array[]) =>
    new ReadableStream<Uint8Array>({
      start(controller) {
        for (const piece of pieces) controller.enqueue(piece);
        controller.close();
      },
    });
  const json = { "content-type": "application/json" };

  it("creates a room from a streamed body, and refuses one past the limit or not UTF-8 with the same problems", async () => {
    const made = await call("/api/rooms", { method: "POST", headers: json, body: chunked(new TextEncoder().encode('{"topology"'), new TextEncoder().encode(':"mesh"}')), duplex: "half" });
    expect(made.status).toBe(201);
    expect(((await made.json()) as { room: { topology: string } }).room.topology).toBe("mesh");
    const piece = new Uint8Array(LIMITS.requestBytes / 2 + 1).fill(0x20);
    const big = await call("/api/rooms", { method: "POST", headers: json, body: chunked(piece, piece), duplex: "half" });
    expect([big.status, ((await big.json()) as { code: string }).code]).toEqual([413, "payload_too_large"]);
    const latin1 = await call("/api/rooms", { method: "POST", headers: json, body: chunked(new Uint8Array([0x7b, 0x22, 0xe9, 0x22, 0x7d])), duplex: "half" });
    expect([latin1.status, ((await latin1.json()) as { detail: string }).detail]).toEqual([400, "Request body is not valid UTF-8"]);
  });

  it("streams a peer's mail as it comes, and a reader that goes away ends the stream and frees its place", async () => {
    const room = (await (await call("/api/rooms", { method: "POST", headers: json, body: "{}" })).json()) as { roomId: string; token: string };
    const viewer = (await (await call("/api/peers", { method: "POST", headers: json, body: JSON.stringify({ roomId: room.roomId }) })).json()) as { peerId: string; token: string };
    const open = () => call(`/api/events?roomId=${room.roomId}`, { headers: { authorization: `Bearer ${viewer.token}` } });
    const stream = await open();
    expect([stream.status, stream.headers.get("content-type")]).toEqual([200, "text/event-stream; charset=utf-8"]);
    const reader = stream.body!.pipeThrough(new TextDecoderStream()).getReader();
    const offer = { roomId: room.roomId, to: viewer.peerId, description: { type: "offer", sdp: "v=0 vercel" } };
    expect((await call("/api/offer", { method: "POST", headers: { ...json, authorization: `Bearer ${room.token}` }, body: JSON.stringify(offer) })).status).toBe(201);
    let text = "";
    while (!text.includes("v=0 vercel")) text += (await reader.read()).value ?? "";
    // One waiting read per address here: the second stream is refused while the first is open…
    const second = await open();
    expect([second.status, ((await second.json()) as { code: string }).code]).toEqual([429, "too_many_waiting"]);
    // …and taken once the first one's reader has gone.
    await reader.cancel();
    const third = await open();
    expect(third.status).toBe(200);
    await third.body!.cancel();
  });
});
