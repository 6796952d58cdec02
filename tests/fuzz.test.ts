/**
 * Property-based abuse of every route (fast-check): random and malformed query strings,
 * bodies, content types and tokens — huge and deeply nested JSON, invalid UTF-8, IDs with path
 * characters. Every answer must be a 2xx, or a 4xx problem document; never a 5xx or a dropped
 * connection. And a rejected request changes nothing: the room, its peers, their unread mail,
 * the chat, and (on Redis) every key of the room are the same before and after.
 */
import { request as httpRequest } from "node:http";
import { connect } from "node:net";
import fc from "fast-check";
import { createClient } from "redis";
import { afterAll, describe, expect } from "vitest";
import { routes } from "../lib/routes/index.js";
import { ALL_STORES, apiClient, clusterUrl, COUNTER_FIELD, createRoom, joinRoom, signalboxKeys, useHarness, type Harness, type Peer, type RedisInspector, type StoreKind } from "./support/harness.js";
import { ownerOf } from "./support/redis-cluster.js";

/** Cases per route and store; FUZZ_RUNS raises it for a longer hunt. */
const RUNS = Number(process.env.FUZZ_RUNS ?? 60);
/**
 * Each Redis setup takes a share of them per route: the store's rules are the same scripts on
 * every transport (REST gets the most, as the production one); the others are sampled.
 */
const RUNS_ON: Record<StoreKind, number> = { memory: RUNS, redis: Math.ceil(RUNS / 2), "redis-tcp": Math.ceil(RUNS / 4), "redis-cluster": Math.ceil(RUNS / 4) };
const PATHS = Object.keys(routes);
const METHODS = ["GET", "POST", "DELETE", "PUT", "PATCH"];

interface Fixture {
  host: Peer;
  viewer: Peer;
  other: Peer; // a peer of another room
  lobbyHost: Peer; // the host of a lobby room…
  waiter: Peer; // …and a peer waiting in its lobby
}

interface Sent {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: Buffer;
}

interface Answer {
  status: number;
  contentType: string;
  text: string;
}

/** Raw node:http, so bodies may be any bytes and headers anything HTTP allows. */
function send(base: string, req: Sent): Promise<Answer> {
  return new Promise((resolve, reject) => {
    // An explicit length: node:http would send a DELETE's body unframed.
    const headers = req.body ? { ...req.headers, "content-length": String(req.body.length) } : req.headers;
    const r = httpRequest(base + req.path, { method: req.method, headers }, (res) => {
      const chunks: Buffer[] = [];
      const contentType = String(res.headers["content-type"] ?? "");
      const answer = () => resolve({ status: res.statusCode!, contentType, text: Buffer.concat(chunks).toString() });
      res.on("data", (c: Buffer) => {
        chunks.push(c);
        // An event stream a random request opened lasts minutes: its first bytes are the answer.
        if (contentType.startsWith("text/event-stream")) (answer(), res.destroy());
      });
      res.on("end", answer);
      res.on("error", reject);
    });
    r.on("error", reject);
    r.end(req.body);
  });
}

const idLike = fc.oneof(
  fc.stringMatching(/^[23456789abcdefghjkmnpqrstuvwxyz]{10}$/),
  fc.constantFrom("../../etc/passwd", "..%2F..%2F", "%00", "a/b/c/d/e/", "ROOM ID", " ", "", "%ff%fe", "\u0000abc", "😀".repeat(5), "x".repeat(5000)),
  fc.string({ maxLength: 40 }),
  fc.string({ unit: "binary", maxLength: 20 }),
);

/**
 * Generated requests name the fixture by placeholders, filled in when a case is sent: an
 * accepted request may close the room, and the next case then runs against a fresh one.
 */
const HOST_ROOM = "_HOST_ROOM_";
const HOST_ROOM_UPPER = "_HOST_ROOM_UPPER_";
const HOST_PEER = "_HOST_PEER_";
const VIEWER_PEER = "_VIEWER_PEER_";
const OTHER_ROOM = "_OTHER_ROOM_";
const HOST_TOKEN = "_HOST_TOKEN_";
const VIEWER_TOKEN = "_VIEWER_TOKEN_";
const OTHER_TOKEN = "_OTHER_TOKEN_";
const LOBBY_ROOM = "_LOBBY_ROOM_";
const WAITER_PEER = "_WAITER_PEER_";
const LOBBY_HOST_TOKEN = "_LOBBY_HOST_TOKEN_";
const WAITER_TOKEN = "_WAITER_TOKEN_";

function fill(text: string, f: Fixture): string {
  return text
    .replaceAll(HOST_ROOM_UPPER, f.host.roomId.toUpperCase())
    .replaceAll(HOST_ROOM, f.host.roomId)
    .replaceAll(HOST_PEER, f.host.peerId)
    .replaceAll(VIEWER_PEER, f.viewer.peerId)
    .replaceAll(OTHER_ROOM, f.other.roomId)
    .replaceAll(HOST_TOKEN, f.host.token)
    .replaceAll(VIEWER_TOKEN, f.viewer.token)
    .replaceAll(OTHER_TOKEN, f.other.token)
    .replaceAll(LOBBY_ROOM, f.lobbyHost.roomId)
    .replaceAll(WAITER_PEER, f.waiter.peerId)
    .replaceAll(LOBBY_HOST_TOKEN, f.lobbyHost.token)
    .replaceAll(WAITER_TOKEN, f.waiter.token);
}

/** A generated request with the fixture's IDs and tokens in place (bodies byte for byte). */
function resolve(req: Sent, f: Fixture): Sent {
  const headers = Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, fill(v, f)]));
  return { ...req, path: fill(req.path, f), headers, body: req.body && Buffer.from(fill(req.body.toString("latin1"), f), "latin1") };
}

/** Values for a query parameter: the fixture's real IDs, near misses, junk. */
function queryValue() {
  return fc.oneof(
    fc.constantFrom(HOST_ROOM, HOST_ROOM_UPPER, ` ${HOST_ROOM} `, HOST_PEER, VIEWER_PEER, OTHER_ROOM, LOBBY_ROOM, WAITER_PEER),
    fc.constantFrom("0", "-1", "26", "1e309", "NaN", "0x10", "0.05", "1700000000000-0", "9999999999999999-0", "ses_" + "a".repeat(20)),
    idLike,
  );
}

function queryString() {
  return fc
    .array(fc.tuple(fc.constantFrom("roomId", "peerId", "after", "wait", "id", "to", "roomId[]", "__proto__", "constructor"), queryValue()), { maxLength: 5 })
    .map((pairs) => {
      // Long-polls are exercised elsewhere: keep any valid wait short so a case takes ms.
      const fixed = pairs.map(([k, v]) => [k, k === "wait" && Number(v) > 0.05 && Number(v) <= 25 ? "0.05" : v] as [string, string]);
      return fixed.length ? `?${new URLSearchParams(fixed)}` : "";
    });
}

const deepJson = fc.integer({ min: 1, max: 100_000 }).map((depth) => "[".repeat(depth) + "]".repeat(depth));
const hugeJson = fc.constant(JSON.stringify({ roomId: "x", text: "a".repeat(300 * 1024) }));

/** Bodies shaped like the API's (with the fixture's IDs), mutated, or not JSON at all. */
function body(): fc.Arbitrary<Buffer | undefined> {
  const shaped = fc.record(
    {
      roomId: queryValue(),
      to: queryValue(),
      name: fc.oneof(fc.string({ maxLength: 80 }), fc.constant(null), fc.integer()),
      text: fc.oneof(fc.string({ maxLength: 50 }), fc.constant("  "), fc.constant("x".repeat(2001))),
      topology: fc.constantFrom("star", "mesh", "ring", 1, null),
      maxPeers: fc.oneof(fc.integer(), fc.double(), fc.constant("8")),
      ttlSeconds: fc.oneof(fc.integer(), fc.constant(1e309)),
      preset: fc.oneof(fc.constantFrom("default", "transcribe", "../x"), fc.string({ maxLength: 40 })),
      sdp: fc.oneof(fc.string({ maxLength: 200 }), fc.constant("v=0\r\n"), fc.constant("m=".repeat(40_000))),
      description: fc.oneof(
        fc.record({ type: fc.constantFrom("offer", "answer", "pranswer", "rollback"), sdp: fc.oneof(fc.string({ maxLength: 100 }), fc.constant("")) }, { requiredKeys: [] }),
        fc.jsonValue({ maxDepth: 3 }),
      ),
      candidates: fc.oneof(
        fc.array(fc.oneof(fc.constant(null), fc.record({ candidate: fc.string({ maxLength: 60 }), sdpMid: fc.oneof(fc.string({ maxLength: 5 }), fc.constant(null)), sdpMLineIndex: fc.oneof(fc.integer(), fc.constant(null)) }, { requiredKeys: [] })), { maxLength: 70 }),
        fc.jsonValue({ maxDepth: 2 }),
      ),
      peerId: queryValue(),
      allow: fc.oneof(fc.boolean(), fc.constantFrom("yes", 1, null)),
      locked: fc.oneof(fc.boolean(), fc.constantFrom("no", 0)),
      access: fc.constantFrom("open", "key", "lobby", "closed", true),
      lobby: fc.oneof(fc.boolean(), fc.constant("1")),
      joinKey: fc.oneof(fc.string({ maxLength: 30 }), fc.constant("A".repeat(22))),
      extra: fc.jsonValue({ maxDepth: 4 }),
    },
    { requiredKeys: [] },
  );
  return fc.oneof(
    { weight: 5, arbitrary: shaped.map((o) => Buffer.from(JSON.stringify(o))) },
    { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 6 }).map((v) => Buffer.from(JSON.stringify(v))) },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b)) }, // invalid UTF-8, binary
    { weight: 1, arbitrary: fc.string({ maxLength: 200 }).map((s) => Buffer.from(s)) }, // not JSON
    { weight: 1, arbitrary: deepJson.map((s) => Buffer.from(s)) },
    { weight: 1, arbitrary: hugeJson.map((s) => Buffer.from(s)) },
    { weight: 1, arbitrary: fc.constant(undefined) },
  );
}

function request(base: fc.Arbitrary<string>): fc.Arbitrary<Sent> {
  return fc
    .record({
      method: fc.constantFrom(...METHODS),
      path: base,
      query: queryString(),
      body: body(),
      contentType: fc.constantFrom("application/json", "application/json; charset=utf-8", "application/problem+json", "application/sdp", "text/plain", "multipart/form-data; boundary=x", "", "\u00e9/\u00e9"),
      auth: fc.oneof(
        fc.constantFrom(`Bearer ${HOST_TOKEN}`, `Bearer ${VIEWER_TOKEN}`, `Bearer ${OTHER_TOKEN}`, `Bearer ${LOBBY_HOST_TOKEN}`, `Bearer ${WAITER_TOKEN}`, "Bearer", "Basic Zm9vOmJhcg==", `Bearer ${VIEWER_TOKEN}x`, `bearer   ${HOST_TOKEN}  `),
        fc.string({ maxLength: 50 }).map((s) => `Bearer ${s.replace(/[^\x20-\x7e]/g, "")}`),
        fc.constant(""),
      ),
    })
    .map(({ method, path, query, body, contentType, auth }) => {
      const headers: Record<string, string> = {};
      // Header values must be latin-1 to leave the client at all.
      if (contentType) headers["content-type"] = contentType.replace(/[^\x20-\xff]/g, "");
      if (auth) headers.authorization = auth;
      return { method, path: path + query, headers, body: method === "GET" ? undefined : body };
    });
}

/** What a rejected request must not change, as the API shows it. */
async function apiState(base: string, f: Fixture) {
  const get = async (path: string, token?: string) => {
    const res = await send(base, { method: "GET", path, headers: token ? { authorization: `Bearer ${token}` } : {} });
    return `${res.status} ${res.text}`;
  };
  const r = f.host.roomId;
  return [
    await get(`/api/diagnostics?roomId=${r}`),
    await get(`/api/peers?roomId=${r}`, f.host.token),
    await get(`/api/poll?roomId=${r}`, f.host.token),
    await get(`/api/poll?roomId=${r}`, f.viewer.token),
    await get(`/api/chat?roomId=${r}`, f.host.token),
    await get(`/api/peers?roomId=${f.other.roomId}`, f.other.token),
    await get(`/api/peers?roomId=${f.lobbyHost.roomId}`, f.lobbyHost.token),
    await get(`/api/poll?roomId=${f.lobbyHost.roomId}`, f.lobbyHost.token),
    await get(`/api/poll?roomId=${f.lobbyHost.roomId}`, f.waiter.token),
  ];
}

/** Connections to the cluster's masters, by port, for reading a room's keys where they live. */
const masters = new Map<number, RedisInspector>();
afterAll(async () => {
  await Promise.all([...masters.values()].map((c) => c.quit()));
});

/** A connection to the server holding `room`'s keys: the one redis-server, or on a cluster its slot's master. */
async function holderOf(h: Harness, room: string): Promise<RedisInspector> {
  if (h.redis) return h.redis;
  const port = await ownerOf(clusterUrl(), `sb:{${room}}`);
  let client = masters.get(port);
  if (!client) {
    client = createClient({ url: `redis://127.0.0.1:${port}` }) as RedisInspector;
    masters.set(port, client);
    await client.connect();
  }
  return client;
}

/** Every key of the fixture's rooms in Redis, with its contents (TTLs aside, and request counters: every request is charged, refused or not). */
async function redisState(h: Harness, f: Fixture) {
  const out: Record<string, unknown> = {};
  for (const room of [f.host.roomId, f.other.roomId, f.lobbyHost.roomId]) {
    const redis = await holderOf(h, room);
    for (const key of (await signalboxKeys(redis, `sb:{${room}}*`)).sort()) {
      const type = await redis.type(key);
      if (type === "hash") out[key] = Object.fromEntries(Object.entries(await redis.hGetAll(key)).filter(([field]) => !COUNTER_FIELD.test(field)));
      else if (type === "stream") out[key] = await redis.xRange(key, "-", "+");
      else if (type === "list") out[key] = await redis.lRange(key, 0, -1);
      else if (type === "zset") out[key] = await redis.zRangeWithScores(key, 0, -1);
      else out[key] = `${type}: ${await redis.get(key).catch(() => "?")}`;
    }
  }
  return out;
}

describe.each(ALL_STORES)("fuzz [%s]", (kind) => {
  let h: Harness;
  let f: Fixture;
  // An AI peer added by a valid request waits for an offer that never comes: not for long.
  const test = useHarness(kind, (started) => (h = started), { OPENAI_OFFER_TIMEOUT_MS: "500" });
  const timeout = Math.max(30_000, RUNS * 250);
  const stats = { cases: 0, rejected: 0, accepted: 0 };

  async function freshFixture() {
    const api = apiClient(h.url);
    const host = await createRoom(api, { topology: "mesh" });
    const viewer = await joinRoom(api, host.roomId, "viewer");
    await api.post("/api/offer", { roomId: host.roomId, to: viewer.peerId, description: { type: "offer", sdp: "v=0\r\n" } }, host.token);
    await api.post("/api/chat", { roomId: host.roomId, text: "before" }, viewer.token);
    const lobbyHost = await createRoom(api, { access: "lobby" });
    const knocked = await api.post("/api/peers", { roomId: lobbyHost.roomId, name: "waiter" });
    const waiter = { roomId: lobbyHost.roomId, peerId: knocked.body.peerId, token: knocked.body.token };
    f = { host, viewer, other: await createRoom(api), lobbyHost, waiter };
  }

  const state = async () => ({ api: await apiState(h.url, f), redis: kind === "memory" ? null : await redisState(h, f) });

  /** The property every case must hold: a sound answer, and no change when refused. */
  async function check(generated: Sent) {
    stats.cases++;
    const req = resolve(generated, f);
    const before = await state();
    const res = await send(h.url, req);
    const what = `${req.method} ${req.path} → ${res.status} ${res.text.slice(0, 300)}`;
    expect(res.status, what).toBeLessThan(500);
    if (res.status >= 400) {
      stats.rejected++;
      expect(res.contentType, what).toMatch(/^application\/problem\+json/);
      const problem = JSON.parse(res.text);
      expect(problem, what).toMatchObject({ type: expect.stringMatching(/^urn:signalbox:problem:[a-z_]+$/), status: res.status, code: expect.any(String), detail: expect.any(String) });
      expect(await state(), `${what}\nchanged the state`).toEqual(before);
    } else {
      stats.accepted++;
      // Accepted: a well-formed answer, and only ever for a caller with a real token where the route needs one.
      if (res.status === 204) expect(res.text, what).toBe("");
      else if (res.contentType.startsWith("application/sdp")) expect(res.text, what).toMatch(/^v=0\r\n/);
      else if (res.contentType.startsWith("text/event-stream")) expect(res.text, what).toMatch(/^(:|id:|event:|data:|retry:)/m);
      else expect([res.contentType, typeof JSON.parse(res.text)], what).toEqual([expect.stringMatching(/^application\/json/), "object"]);
      const spec = routes[req.path.split("?")[0] as keyof typeof routes]?.spec[req.method as "GET"];
      if (spec?.auth === "peer") {
        const bearer = /^bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? "")?.[1];
        expect([f.host.token, f.viewer.token, f.other.token, f.lobbyHost.token, f.waiter.token], `${what}\naccepted without a real token`).toContain(bearer);
      }
      // An accepted request may change the room (even close it): start the next case afresh.
      await freshFixture();
    }
  }

  for (const path of PATHS.filter((p) => !p.startsWith("/api/session"))) {
    test(`${path}: random requests get a 2xx or a 4xx problem, and refused ones change nothing`, { timeout }, async () => {
      await freshFixture();
      await fc.assert(fc.asyncProperty(request(fc.constant(path)), check), { numRuns: RUNS_ON[kind] });
    });
  }

  // AI session routes reach the OpenAI simulator: fewer cases, no valid SDP offers.
  test("/api/session*: random requests get a 2xx or a 4xx problem, and refused ones change nothing", { timeout }, async () => {
    await freshFixture();
    const paths = fc.constantFrom(...PATHS.filter((p) => p.startsWith("/api/session")));
    await fc.assert(fc.asyncProperty(request(paths), check), { numRuns: RUNS });
  });

  test("paths, methods and raw HTTP outside the routes never get a 5xx or take the server down", { timeout }, async () => {
    await freshFixture();
    const paths = fc.oneof(
      fc.constantFrom("/api/", "/api", "/api/rooms/", "/api/../api/rooms", "/api/rooms/x", "/api/%2e%2e/rooms", "/api/ROOMS", "/api/session/peer/x", "/api/openapi", "/%ff", "/api/%00"),
      fc.string({ maxLength: 30 }).map((s) => `/api/${encodeURIComponent(s)}`),
    );
    await fc.assert(
      fc.asyncProperty(request(paths), async (generated) => {
        stats.cases++;
        const req = resolve(generated, f);
        const res = await send(h.url, req);
        expect(res.status, `${req.method} ${req.path}`).toBeLessThan(500);
      }),
      { numRuns: RUNS },
    );
    // Malformed HTTP: Node's parser answers 400 and the server carries on.
    for (const raw of ["GARBAGE\r\n\r\n", "GET /api/diagnostics HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", `GET /api/diagnostics HTTP/1.1\r\n${"x-a: b\r\n".repeat(5000)}\r\n`, "POST /api/rooms HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"]) {
      stats.cases++;
      const reply = await new Promise<string>((resolve) => {
        const socket = connect(Number(new URL(h.url).port), "127.0.0.1", () => socket.end(raw));
        let text = "";
        socket.on("data", (d) => (text += d));
        socket.on("close", () => resolve(text));
        socket.on("error", () => resolve(text));
      });
      expect(reply, "a 4xx answer, not a dropped connection").toMatch(/^HTTP\/1\.1 4\d\d/);
    }
    expect((await send(h.url, { method: "GET", path: "/api/diagnostics", headers: {} })).status).toBe(200);
    console.log(`fuzz [${kind}]: ${stats.cases} cases, ${stats.rejected} refused (state unchanged each time), ${stats.accepted} accepted`);
  });
});
