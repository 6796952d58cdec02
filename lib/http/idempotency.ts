/**
 * Idempotency keys (the IETF httpapi draft's `Idempotency-Key` header): a client sends one with
 * a request that changes something, and the same one with every retry of it; the store then
 * applies the request at most once and answers a repeat with the first reply (lib/store/lua.ts).
 * A key is the client's secret for as long as it is kept (a repeated join gets the same peer):
 * a random UUID is what it should be.
 */
import { createHash } from "node:crypto";
import { problems } from "../problem.js";
import type { Caller, Once } from "../store/types.js";

/** How long a reply is kept for repeats of its request. */
export const IDEMPOTENCY_WINDOW_MS = 10 * 60_000;

/** 16 to 255 visible ASCII characters, bare or as a structured-field string ("…"). */
const KEY = /^"?([\x21\x23-\x7e]{16,255})"?$/;

const sha256 = (text: string) => createHash("sha256").update(text).digest("base64url");

/**
 * The request's Once, from its Idempotency-Key: the key scoped to the method, the path and who
 * sends it (so no one else's request can be answered with it), and the request's fingerprint
 * (its query and body: the same key with another request is refused). None for reads, or
 * without the header.
 */
export function requestOnce(request: Request, url: URL, body: unknown, caller: Caller | undefined): Once | undefined {
  if (request.method === "GET" || request.method === "OPTIONS") return undefined;
  const header = request.headers.get("idempotency-key");
  if (header === null) return undefined;
  const key = KEY.exec(header.trim())?.[1];
  if (!key) throw problems.invalidIdempotencyKey();
  const scope = `${request.method} ${url.pathname} ${caller?.peerId ?? "-"}`;
  const query = [...url.searchParams].sort(([a], [b]) => a.localeCompare(b));
  return {
    key: sha256(`${scope}\n${key}`),
    fingerprint: sha256(JSON.stringify([query, body ?? null])),
    ttlMs: IDEMPOTENCY_WINDOW_MS,
  };
}
