/** A raw HTTP client for the API, and the few steps every suite and benchmark repeats. */

export interface ApiResponse<T = any> {
  status: number;
  headers: Headers;
  body: T;
}

/** A thin fetch wrapper: JSON in, parsed JSON (or null) out. */
export function apiClient(base: string) {
  async function call<T = any>(method: string, path: string, options: { token?: string; body?: unknown; raw?: string; headers?: Record<string, string>; signal?: AbortSignal } = {}): Promise<ApiResponse<T>> {
    const headers: Record<string, string> = { ...options.headers };
    if (options.token) headers.authorization = `Bearer ${options.token}`;
    let body: string | undefined = options.raw;
    if (options.body !== undefined) {
      body = JSON.stringify(options.body);
      headers["content-type"] ??= "application/json";
    }
    const res = await fetch(base + path, { method, headers, body, signal: options.signal });
    const text = await res.text();
    return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : null };
  }
  return {
    call,
    get: <T = any>(path: string, token?: string) => call<T>("GET", path, { token }),
    post: <T = any>(path: string, body: unknown, token?: string) => call<T>("POST", path, { body, token }),
    del: <T = any>(path: string, token?: string) => call<T>("DELETE", path, { token }),
  };
}

export type Api = ReturnType<typeof apiClient>;

/**
 * A client address no earlier run has used (rate-limit counters in Redis outlive a run): a
 * random /64 of the IPv6 documentation prefix. Only ever a header value; nothing is sent there.
 */
export function freshAddress(): string {
  const group = () => Math.floor(Math.random() * 0x10000).toString(16);
  return `2001:db8:${group()}:${group()}::1`;
}

/**
 * Waits, when a rate-limit window (a minute; hours are made of them) ends within 3 s, until the
 * next one begins: the sliding-window limiter estimates across a window's edge, rounding down,
 * so a burst that straddles one can be let through one request past its limit.
 */
export async function clearOfWindowEdge(windowMs = 60_000, marginMs = 3000) {
  const left = windowMs - (Date.now() % windowMs);
  if (left < marginMs) await new Promise((r) => setTimeout(r, left + 50));
}

export interface Peer {
  roomId: string;
  peerId: string;
  token: string;
}

export async function createRoom(api: Api, body: Record<string, unknown> = {}): Promise<Peer & { body: any }> {
  const res = await api.post("/api/rooms", body);
  if (res.status !== 201) throw new Error(`create room: ${res.status} ${JSON.stringify(res.body)}`);
  return { roomId: res.body.roomId, peerId: res.body.peerId, token: res.body.token, body: res.body };
}

export async function joinRoom(api: Api, roomId: string, name?: string): Promise<Peer & { body: any }> {
  const res = await api.post("/api/peers", name ? { roomId, name } : { roomId });
  if (res.status !== 201) throw new Error(`join: ${res.status} ${JSON.stringify(res.body)}`);
  return { roomId, peerId: res.body.peerId, token: res.body.token, body: res.body };
}

/** Reads and acknowledges everything pending for a peer, following the cursor. */
export async function drain(api: Api, peer: Peer, after?: string): Promise<{ messages: any[]; cursor?: string }> {
  const messages: any[] = [];
  let cursor = after;
  for (;;) {
    const res = await api.get(`/api/poll?roomId=${peer.roomId}${cursor ? `&after=${cursor}` : ""}`, peer.token);
    if (res.status === 204) return { messages, cursor };
    if (res.status !== 200) throw new Error(`poll: ${res.status} ${JSON.stringify(res.body)}`);
    messages.push(...res.body.messages);
    cursor = res.body.cursor;
  }
}

