/**
 * The typed signaling client, for browsers and Node (fetch only). Creates or joins a room,
 * sends descriptions and candidates, and runs one receive loop per session with the
 * acknowledging cursor (a response lost on the wire loses nothing): the event stream, falling
 * back to long-poll where a proxy holds the stream back, and to interval polling where
 * long-polls are cut short; backing off on errors.
 */
import { createParser } from "eventsource-parser";

export interface IceServer {
  urls: string | string[];
  username?: string;
  credential?: string;
}

export interface PeerInfo {
  peerId: string;
  role: "host" | "viewer" | "agent";
  name?: string;
  joinedAt: number;
}

export interface RoomInfo {
  roomId: string;
  topology: "star" | "mesh";
  maxPeers: number;
  hostId: string;
  createdAt: number;
  expiresAt: number;
  /** "key": joining takes the room's join key too; "lobby": the host lets each joiner in. */
  access: "open" | "key" | "lobby";
  /** Joiners wait in a lobby until the host admits them (access "lobby", or a key room made with `lobby: true`). */
  lobby: boolean;
  locked: boolean;
}

export interface Session {
  roomId: string;
  peerId: string;
  token: string;
  role: "host" | "viewer";
  room: RoomInfo;
  peers: PeerInfo[];
  iceServers: IceServer[];
  expiresAt: number;
  /** The host of a key room: the key to share (e.g. in a link's fragment); only the host gets it. */
  joinKey?: string;
}

export type CandidateInit = { candidate: string; sdpMid?: string | null; sdpMLineIndex?: number | null; usernameFragment?: string | null } | null;

export type Message =
  | { id: string; type: "offer" | "answer"; from: string; at: number; description: { type: "offer" | "answer"; sdp: string } }
  | { id: string; type: "candidate"; from: string; at: number; candidates: CandidateInit[] }
  | { id: string; type: "peer-joined"; from: string; at: number; peer: PeerInfo }
  | { id: string; type: "peer-left"; from: string; at: number; peerId: string; reason: "left" | "removed" }
  | { id: string; type: "room-closed"; from: string; at: number }
  | { id: string; type: "chat"; from: string; at: number; name: string | null; text: string }
  /** To the host: someone waits in the lobby until `expiresAt` (answer with `admit`). */
  | { id: string; type: "knock"; from: string; at: number; peer: { peerId: string; name: string | null }; expiresAt: number }
  /** To a peer in the lobby: the host let it in (what a join would have answered). */
  | { id: string; type: "admitted"; from: string; at: number; room: RoomInfo; peers: PeerInfo[]; iceServers: IceServer[] }
  | { id: string; type: "denied"; from: string; at: number };

/** What a knock waits for. */
export interface JoinInput {
  name?: string;
  /** A key room's key (e.g. from the link's `#k=` fragment). */
  joinKey?: string;
  /** In a lobby room: called once the knock is in, while the host decides. */
  onWaiting?: (waiting: { peerId: string; expiresAt: number }) => void;
  /** Gives up waiting in the lobby (and leaves it). */
  signal?: AbortSignal;
}

export interface ChatMessage {
  from: string;
  name: string | null;
  text: string;
  at: number;
}

/** An answer the API gave as a problem document. */
export class SignalingError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly retryAfterMs?: number,
  ) {
    super(message);
    this.name = "SignalingError";
  }

  /**
   * Worth retrying: the service is overloaded or briefly unavailable, or it gave up reading the
   * request (408: it did nothing with it, so even a POST is safe to send again).
   */
  get transient() {
    return this.status === 408 || this.status === 429 || this.status >= 500;
  }
}

/** The room is gone (closed, expired, or never existed), or this peer was removed from it. */
export class SessionEndedError extends SignalingError {
  constructor(status: number, code: string, message: string) {
    super(status, code, message);
    this.name = "SessionEndedError";
  }
}

export interface ClientOptions {
  /** Where the API lives; the page's own origin by default. */
  baseUrl?: string;
  /**
   * "stream" (default): the server pushes mail as it comes (GET /api/events); "long-poll" holds
   * each read open until mail arrives; "interval" polls on a schedule. Each falls back to the
   * next by itself where it does not work.
   */
  mode?: PollMode;
  /** Seconds a long-poll waits (default 25, the most the API allows). */
  waitSeconds?: number;
  fetch?: typeof fetch;
}

export type PollMode = "stream" | "long-poll" | "interval";

/**
 * A stream whose first byte (the server sends one at once) has not come in this long is held
 * back by a buffering proxy: the client falls back to long-poll. One silent this long after
 * that (the server sends a heartbeat every 15 s) is dead, and is reopened.
 */
export const STREAM_FIRST_BYTE_MS = 5000;
export const STREAM_STALL_MS = 45_000;

/** The seed's interval schedule: every second for ten tries, then every five; with jitter. */
export function intervalDelay(emptyPolls: number, random = Math.random): number {
  const base = emptyPolls < 10 ? 1000 : 5000;
  return base * (0.8 + 0.4 * random());
}

/**
 * Exponential backoff with jitter, or the server's Retry-After when it gave one (plus up to half
 * again, so that clients a server shed at once do not all come back at once).
 */
export function backoffDelay(failures: number, retryAfterMs?: number, random = Math.random): number {
  if (retryAfterMs !== undefined) return retryAfterMs * (1 + random() / 2);
  return Math.min(30_000, 500 * 2 ** Math.min(failures, 6)) * (0.5 + random());
}

/** Waits `ms`, or less if `signal` aborts; leaves no listener behind on the (long-lived) signal. */
const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });

/** A signal that aborts with `parent` or after `ms`; call `release` when done with it. */
function linked(parent: AbortSignal, ms: number) {
  const controller = new AbortController();
  const abort = () => controller.abort();
  const timer = setTimeout(abort, ms);
  parent.addEventListener("abort", abort, { once: true });
  return {
    signal: controller.signal,
    release: () => (clearTimeout(timer), parent.removeEventListener("abort", abort)),
  };
}

async function errorFrom(res: Response): Promise<SignalingError> {
  let body: { code?: string; detail?: string; title?: string } = {};
  try {
    body = await res.json();
  } catch {
    // not a problem document (a proxy's error page): keep the status
  }
  const retryAfter = Number(res.headers.get("retry-after"));
  const message = body.detail ?? body.title ?? `HTTP ${res.status}`;
  const code = body.code ?? `http_${res.status}`;
  if (res.status === 404 && code === "room_not_found") return new SessionEndedError(404, code, message);
  if (res.status === 401 && code === "invalid_token") return new SessionEndedError(401, code, message);
  return new SignalingError(res.status, code, message, Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter * 1000 : undefined);
}

interface CallOptions {
  token?: string;
  body?: unknown;
  signal?: AbortSignal;
  /** Lets the request outlive the page (leaving on unload). */
  keepalive?: boolean;
  /** Names the request, the same on every attempt of it, so the server applies it once. */
  idempotencyKey?: string;
}

/**
 * A fresh idempotency key: 128 random bits. (getRandomValues, not randomUUID: a page served over
 * plain HTTP from a LAN address is no secure context, and has only the former.)
 */
function newIdempotencyKey(): string {
  const bytes = globalThis.crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

class Api {
  constructor(
    readonly baseUrl: string,
    private readonly fetcher: typeof fetch,
  ) {}

  async call<T>(method: string, path: string, options: CallOptions = {}): Promise<{ status: number; body: T | null }> {
    const headers: Record<string, string> = {};
    if (options.token) headers.authorization = `Bearer ${options.token}`;
    if (options.body !== undefined) headers["content-type"] = "application/json";
    if (options.idempotencyKey) headers["idempotency-key"] = options.idempotencyKey;
    const res = await this.fetcher(this.baseUrl + path, {
      method,
      headers,
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
      signal: options.signal,
      keepalive: options.keepalive,
      // Not merely uncached: without this, Chromium holds a GET behind an identical one in
      // flight (its cache lock), and two tabs in a room often poll the very same URL (fan-out
      // messages share an id), so one tab's long-poll would wait out the other's.
      cache: "no-store",
    });
    if (!res.ok) throw await errorFrom(res);
    const text = await res.text();
    return { status: res.status, body: text ? (JSON.parse(text) as T) : null };
  }

  /** Opens a server-sent event stream; throws the problem if it is refused. */
  async open(path: string, token: string, signal: AbortSignal): Promise<Response> {
    const res = await this.fetcher(this.baseUrl + path, {
      headers: { authorization: `Bearer ${token}`, accept: "text/event-stream" },
      signal,
      cache: "no-store",
    });
    if (!res.ok) throw await errorFrom(res);
    return res;
  }

  /**
   * Retries transient failures (network, 408, 429, 5xx) a few times, honouring Retry-After. A
   * request that changes something carries one idempotency key on every attempt: one whose reply
   * was lost is not applied twice, and its retry gets the first answer.
   */
  async callWithRetry<T>(method: string, path: string, options: CallOptions = {}, attempts = 4) {
    const once = method === "GET" ? options : { idempotencyKey: newIdempotencyKey(), ...options };
    for (let failures = 0; ; failures++) {
      try {
        return await this.call<T>(method, path, once);
      } catch (error) {
        const transient = !(error instanceof SignalingError) || error.transient;
        if (!transient || failures + 1 >= attempts || options.signal?.aborted) throw error;
        await sleep(backoffDelay(failures, error instanceof SignalingError ? error.retryAfterMs : undefined), options.signal);
      }
    }
  }
}

/** The API at the options' base URL, through their fetch (the global one by default). */
const apiFor = (options: ClientOptions) => new Api(options.baseUrl ?? "", options.fetch ?? globalThis.fetch.bind(globalThis));

type Listener<T> = (value: T) => void;

export class SignalingClient {
  private readonly api: Api;
  private cursor: string | null = null;
  private running: AbortController | null = null;
  private readonly messageListeners = new Set<Listener<Message>>();
  private readonly endListeners = new Set<Listener<SessionEndedError>>();
  private readonly errorListeners = new Set<Listener<Error>>();
  /** How the loop receives now: starts as asked, falls back (stream → long-poll → interval) where that fails. */
  pollMode: PollMode;

  private constructor(
    readonly session: Session,
    private readonly options: ClientOptions,
  ) {
    this.api = apiFor(options);
    this.pollMode = options.mode ?? "stream";
  }

  /** Public facts about a room, to fail fast on a wrong or expired ID; throws SessionEndedError if gone. */
  static async checkRoom(roomId: string, options: ClientOptions = {}) {
    const api = apiFor(options);
    const res = await api.callWithRetry<{ room: { roomId: string; topology: string; peers: number; maxPeers: number; hostPresent: boolean; expiresAt: number; access: "open" | "key"; locked: boolean } }>(
      "GET",
      `/api/diagnostics?roomId=${encodeURIComponent(roomId)}`,
    );
    return res.body!.room;
  }

  static async createRoom(input: { topology?: "star" | "mesh"; access?: "open" | "key" | "lobby"; lobby?: boolean; maxPeers?: number; name?: string; authSecret?: string } = {}, options: ClientOptions = {}) {
    const api = apiFor(options);
    const { authSecret, ...body } = input;
    const res = await api.callWithRetry<Omit<Session, "role" | "peers">>("POST", "/api/rooms", { body, token: authSecret });
    const created = res.body!;
    const host: PeerInfo = { peerId: created.peerId, role: "host", joinedAt: created.room.createdAt, ...(input.name ? { name: input.name } : {}) };
    return new SignalingClient({ ...created, role: "host", peers: [host] }, options);
  }

  /**
   * Joins by ID (and, for a key room, its `joinKey`: a SignalingError 403 `join_key_required` or
   * `join_key_invalid` without the right one, `room_locked` if the host locked it). In a lobby
   * room it knocks and resolves once the host lets it in; a SignalingError `join_denied` if the
   * host does not, `join_expired` if the host never answers.
   */
  static async joinRoom(roomId: string, input: JoinInput = {}, options: ClientOptions = {}) {
    const { onWaiting, signal, ...body } = input;
    const api = apiFor(options);
    const res = await api.callWithRetry<Omit<Session, "role"> & { status?: "waiting" }>("POST", "/api/peers", { body: { roomId, ...body } });
    const joined = res.body!;
    if (res.status !== 202) return new SignalingClient({ ...joined, role: "viewer" }, options);
    onWaiting?.({ peerId: joined.peerId, expiresAt: joined.expiresAt });
    const client = new SignalingClient({ roomId, peerId: joined.peerId, token: joined.token, expiresAt: joined.expiresAt, role: "viewer", room: null!, peers: [], iceServers: [] }, options);
    await client.admission(joined.expiresAt, signal);
    return client;
  }

  /**
   * Reads this waiting peer's mail until the host answers. The loop stops at the answer, so the
   * mail after it (the host's offer) waits for the caller's own `start()` and listeners.
   */
  private admission(expiresAt: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      const finish = (error?: Error) => {
        offMessage();
        offEnd();
        clearTimeout(timer);
        signal?.removeEventListener("abort", abort);
        this.stop();
        if (error) reject(error);
        else resolve();
      };
      const giveUp = (error: Error) => {
        finish(error);
        void this.leave();
      };
      const expired = () => new SignalingError(403, "join_expired", "The host did not let you in in time");
      const offMessage = this.onMessage((m) => {
        if (m.type === "admitted") {
          Object.assign(this.session, { room: m.room, peers: m.peers, iceServers: m.iceServers, expiresAt: m.room.expiresAt });
          finish();
        } else if (m.type === "denied") finish(new SignalingError(403, "join_denied", "The host did not let you in"));
      });
      // The wait ended on the server first (its clock, or the host removed this peer): the same answer.
      const offEnd = this.onEnd((e) => finish(e.status === 401 ? expired() : e));
      // The server's clock set expiresAt: a little slack for this one's.
      const timer = setTimeout(() => giveUp(expired()), Math.max(0, expiresAt - Date.now()) + 2000);
      const abort = () => giveUp(signal?.reason instanceof Error ? signal.reason : new Error("Stopped waiting"));
      if (signal?.aborted) return abort();
      signal?.addEventListener("abort", abort, { once: true });
      this.start();
    });
  }

  get peerId() {
    return this.session.peerId;
  }

  get roomId() {
    return this.session.roomId;
  }

  private authed<T>(method: string, path: string, body?: unknown, keepalive = false) {
    return this.api.callWithRetry<T>(method, path, { token: this.session.token, body, keepalive });
  }

  async sendDescription(to: string, description: { type: "offer" | "answer"; sdp: string }) {
    await this.authed("POST", `/api/${description.type}`, { roomId: this.roomId, to, description: { type: description.type, sdp: description.sdp } });
  }

  async sendCandidates(to: string, candidates: CandidateInit[]) {
    for (let i = 0; i < candidates.length; i += 64) {
      await this.authed("POST", "/api/candidate", { roomId: this.roomId, to, candidates: candidates.slice(i, i + 64) });
    }
  }

  async listPeers(): Promise<{ room: RoomInfo; peers: PeerInfo[] }> {
    return (await this.authed<{ room: RoomInfo; peers: PeerInfo[] }>("GET", `/api/peers?roomId=${this.roomId}`)).body!;
  }

  /** Host: a locked room refuses every new join; who is in stays in. */
  async setLocked(locked: boolean) {
    await this.authed("PATCH", "/api/rooms", { roomId: this.roomId, locked });
    this.session.room.locked = locked;
  }

  /** Host of a key room: a new join key (the old one stops working at once); resolves to it. */
  async rotateJoinKey(): Promise<string> {
    const { joinKey } = (await this.authed<{ joinKey: string }>("POST", "/api/rooms/key", { roomId: this.roomId })).body!;
    this.session.joinKey = joinKey;
    return joinKey;
  }

  /** Host of a lobby room: lets a peer that knocked in (`allow`, the default) or not. */
  async admit(peerId: string, allow = true) {
    await this.authed("POST", "/api/admit", { roomId: this.roomId, peerId, allow });
  }

  /** Host of a lobby room: someone knocked (answer with `admit`); the same as a `knock` message. */
  onKnock(listener: Listener<Extract<Message, { type: "knock" }>>) {
    return this.onMessage((m) => m.type === "knock" && listener(m));
  }

  async removePeer(peerId: string) {
    await this.authed("DELETE", `/api/peers?roomId=${this.roomId}&peerId=${peerId}`);
  }

  /** A viewer leaves; the host leaving closes the room. */
  async leave() {
    this.stop();
    await this.authed("DELETE", `/api/peers?roomId=${this.roomId}&peerId=${this.peerId}`, undefined, true).catch(() => {});
  }

  async closeRoom() {
    this.stop();
    await this.authed("DELETE", `/api/rooms?roomId=${this.roomId}`, undefined, true).catch((error) => {
      if (!(error instanceof SessionEndedError)) throw error;
    });
  }

  /** Sends a chat message to everyone else in the room (it arrives as a `chat` message). */
  async sendChat(text: string): Promise<ChatMessage> {
    return (await this.authed<ChatMessage>("POST", "/api/chat", { roomId: this.roomId, text })).body!;
  }

  /** The room's last chat messages, oldest first: what a late joiner missed. */
  async chatHistory(): Promise<ChatMessage[]> {
    return (await this.authed<{ messages: ChatMessage[] }>("GET", `/api/chat?roomId=${this.roomId}`)).body!.messages;
  }

  /** Host: opens an AI session for a complete offer (all candidates in it); returns OpenAI's answer. */
  async startAiSession(input: { sdp: string; preset?: string }) {
    return (await this.authed<{ sessionId: string; sdp: string; preset: string; upstream: string }>("POST", "/api/session", { roomId: this.roomId, ...input })).body!;
  }

  /**
   * Host: adds an AI peer to the room. It joins (a peer-joined message with role "agent"), takes
   * the offer this host sends it, and answers like any viewer; resolves once it has answered.
   */
  async addAiPeer(input: { preset?: string } = {}) {
    return (await this.authed<{ sessionId: string; peerId: string; preset: string; upstream: string }>("POST", "/api/session/peer", { roomId: this.roomId, ...input })).body!;
  }

  /** Host: a short-lived OpenAI client secret, for clients that connect to OpenAI themselves. */
  async mintAiSecret(input: { preset?: string } = {}) {
    return (await this.authed<{ value: string; expiresAt: number; preset: string; callsUrl: string | null }>("POST", "/api/session/token", { roomId: this.roomId, ...input })).body!;
  }

  async endAiSession(sessionId: string) {
    await this.authed("DELETE", `/api/session?roomId=${this.roomId}&id=${sessionId}`, undefined, true);
  }

  onMessage(listener: Listener<Message>) {
    this.messageListeners.add(listener);
    return () => this.messageListeners.delete(listener);
  }

  /** The session is over: the room closed or expired, or this peer was removed. */
  onEnd(listener: Listener<SessionEndedError>) {
    this.endListeners.add(listener);
    return () => this.endListeners.delete(listener);
  }

  /** A transient failure the loop is riding out (it keeps retrying). */
  onError(listener: Listener<Error>) {
    this.errorListeners.add(listener);
    return () => this.errorListeners.delete(listener);
  }

  /** Starts the poll loop (idempotent). One loop per session carries every message type. */
  start() {
    if (this.running) return;
    this.running = new AbortController();
    void this.loop(this.running.signal);
  }

  stop() {
    this.running?.abort();
    this.running = null;
  }

  private deliver(message: Message) {
    for (const listener of this.messageListeners) {
      try {
        listener(message);
      } catch (error) {
        this.errorListeners.forEach((l) => l(error as Error));
      }
    }
  }

  private end(error: SessionEndedError) {
    this.stop();
    this.endListeners.forEach((l) => l(error));
  }

  /**
   * One stream connection, until it ends: "again" (reopen at once, after the cursor), "cut"
   * (it broke off early: reopen after a backoff), "fallback" (held back by a proxy: poll
   * instead) or "over" (the session ended, or another stream of this peer took over).
   */
  private async streamOnce(signal: AbortSignal): Promise<"again" | "cut" | "fallback" | "over"> {
    const controller = new AbortController();
    const stop = () => controller.abort();
    signal.addEventListener("abort", stop, { once: true });
    let timer: ReturnType<typeof setTimeout> | undefined;
    let silent = false;
    const expectBytesWithin = (ms: number) => {
      clearTimeout(timer);
      timer = setTimeout(() => ((silent = true), controller.abort()), ms);
    };
    const opened = Date.now();
    let gotBytes = false;
    let ended: "again" | "over" | null = null;
    let problem: SignalingError | null = null;
    const parser = createParser({
      onEvent: (event) => {
        if (ended || problem || signal.aborted) return;
        if (event.event === "end") {
          ended = this.streamEnded(JSON.parse(event.data).reason);
        } else if (event.event === "problem") {
          const p = JSON.parse(event.data) as { status: number; code: string; detail?: string };
          problem = new SignalingError(p.status, p.code, p.detail ?? p.code);
        } else {
          const message = JSON.parse(event.data) as Message;
          this.deliver(message);
          if (event.id) this.cursor = event.id;
          if (message.type === "room-closed") ended = (this.end(new SessionEndedError(404, "room_closed", "The host ended the session")), "over");
        }
      },
    });
    expectBytesWithin(STREAM_FIRST_BYTE_MS);
    try {
      const res = await this.api.open(`/api/events?roomId=${this.roomId}${this.cursor ? `&after=${this.cursor}` : ""}`, this.session.token, controller.signal);
      if (!res.body || !/^text\/event-stream/.test(res.headers.get("content-type") ?? "")) {
        await res.body?.cancel();
        return "fallback";
      }
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      while (!ended && !problem) {
        const { done, value } = await reader.read();
        if (done) break;
        gotBytes = true;
        expectBytesWithin(STREAM_STALL_MS);
        parser.feed(value);
      }
      await reader.cancel().catch(() => {});
      if (problem) throw problem;
      return ended ?? (Date.now() - opened < 2000 ? "cut" : "again");
    } catch (error) {
      if (signal.aborted) return "over";
      if (silent) return gotBytes ? "again" : "fallback";
      throw error;
    } finally {
      clearTimeout(timer);
      signal.removeEventListener("abort", stop);
      controller.abort();
    }
  }

  /** What a stream's `end` event means for the loop. */
  private streamEnded(reason: string): "again" | "over" {
    if (reason === "gone") this.end(new SessionEndedError(401, "gone", "This peer left the room or was removed from it"));
    else if (reason === "replaced") {
      this.errorListeners.forEach((l) => l(new Error("Another stream of this peer took over; this one stopped")));
      this.stop();
    }
    // room-closed: its message came just before, and ended the session.
    return reason === "reconnect" ? "again" : "over";
  }

  private async loop(signal: AbortSignal) {
    const waitSeconds = Math.min(25, Math.max(1, this.options.waitSeconds ?? 25));
    let failures = 0;
    let emptyPolls = 0;
    let earlyEmpty = 0;
    while (!signal.aborted) {
      if (this.pollMode === "stream") {
        try {
          const outcome = await this.streamOnce(signal);
          if (outcome === "fallback") this.pollMode = "long-poll";
          // A stream cut short again and again (a proxy closing it) backs off like a failure.
          if (outcome === "cut") await sleep(backoffDelay(failures++), signal);
          else failures = 0;
        } catch (error) {
          if (signal.aborted) return;
          if (error instanceof SessionEndedError) return this.end(error);
          this.errorListeners.forEach((l) => l(error as Error));
          await sleep(backoffDelay(failures++, error instanceof SignalingError ? error.retryAfterMs : undefined), signal);
        }
        continue;
      }
      const wait = this.pollMode === "long-poll" ? waitSeconds : 0;
      const started = Date.now();
      const request = linked(signal, (wait + 15) * 1000);
      try {
        const query = `roomId=${this.roomId}&wait=${wait}${this.cursor ? `&after=${this.cursor}` : ""}`;
        const res = await this.api.call<{ messages: Message[]; cursor: string }>("GET", `/api/poll?${query}`, {
          token: this.session.token,
          signal: request.signal,
        }).finally(request.release);
        failures = 0;
        if (res.status === 200 && res.body) {
          emptyPolls = 0;
          earlyEmpty = 0;
          // The cursor follows each message delivered: a listener that stops the loop (a lobby
          // peer let in) leaves the rest of the batch for the next start.
          for (const message of res.body.messages) {
            if (signal.aborted) return;
            this.deliver(message);
            this.cursor = message.id;
            if (message.type === "room-closed") return this.end(new SessionEndedError(404, "room_closed", "The host ended the session"));
          }
          continue;
        }
        // Nothing pending. A long-poll that keeps coming back empty long before its wait
        // (a proxy cutting it short) is not working: poll on the interval schedule instead.
        if (this.pollMode === "long-poll" && Date.now() - started < (wait * 1000) / 2 && ++earlyEmpty >= 3) this.pollMode = "interval";
        if (this.pollMode === "interval") await sleep(intervalDelay(emptyPolls++), signal);
      } catch (error) {
        if (signal.aborted) return;
        if (error instanceof SessionEndedError) return this.end(error);
        this.errorListeners.forEach((l) => l(error as Error));
        const retryAfter = error instanceof SignalingError ? error.retryAfterMs : undefined;
        await sleep(backoffDelay(failures++, retryAfter), signal);
      }
    }
  }
}
