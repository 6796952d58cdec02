/**
 * Errors are values of one kind: a Problem (RFC 9457) with an HTTP status and a stable
 * machine `code`. lib/ throws them; the HTTP edge renders them once (lib/http/route.ts).
 */
export class Problem extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    readonly title: string,
    readonly detail: string,
    readonly extra: Record<string, unknown> = {},
    readonly headers: Record<string, string> = {},
  ) {
    super(detail);
  }

  toJSON() {
    return {
      type: `urn:signalbox:problem:${this.code}`,
      title: this.title,
      status: this.status,
      detail: this.detail,
      code: this.code,
      ...this.extra,
    };
  }
}

export const problems = {
  invalidJson: (detail: string) => new Problem(400, "invalid_json", "Request body is not valid JSON", detail),
  invalidRequest: (detail: string, errors: { field: string; message: string }[]) =>
    new Problem(400, "invalid_request", "Request is invalid", detail, { errors }),
  tooLarge: (detail: string, errors: { field: string; message: string }[] = []) =>
    new Problem(413, "payload_too_large", "Request is too large", detail, errors.length ? { errors } : {}),
  unsupportedMediaType: (detail: string) => new Problem(415, "unsupported_media_type", "Unsupported media type", detail),
  methodNotAllowed: (allowed: string[]) =>
    new Problem(405, "method_not_allowed", "Method not allowed", `Allowed methods: ${allowed.join(", ")}`, {}, { allow: allowed.join(", ") }),
  routeNotFound: (path: string) => new Problem(404, "not_found", "Not found", `No route for ${path}`),
  missingToken: () =>
    new Problem(401, "missing_token", "Authentication required", "Send the peer token as 'Authorization: Bearer <token>'", {}, { "www-authenticate": "Bearer" }),
  invalidToken: () =>
    new Problem(401, "invalid_token", "Invalid token", "The token is not valid for this room (the peer left or was removed, or the room closed or expired)", {}, { "www-authenticate": 'Bearer error="invalid_token"' }),
  invalidTicket: () =>
    new Problem(401, "invalid_ticket", "Invalid stream ticket", "A stream ticket opens one stream, within a minute of being issued: ask POST /api/events/ticket for another"),
  joinKeyRequired: () => new Problem(403, "join_key_required", "Join key required", "This room is private: join with the link its host shared (it carries the key)"),
  joinKeyInvalid: () => new Problem(403, "join_key_invalid", "Join key invalid", "This is not the room's join key, or the host has replaced it: ask the host for a new link"),
  lobbyFull: (max: number) => new Problem(409, "lobby_full", "Lobby full", `${max} people are already waiting for the host to let them in: try again shortly`),
  notAdmitted: () =>
    new Problem(403, "not_admitted", "Not admitted yet", "This peer is waiting for the host to let it in: until then it may only read its own mail (and leave)"),
  peerNotWaiting: (peerId: string) => new Problem(404, "peer_not_found", "Peer not found", `Peer '${peerId}' is not waiting to be let in (it left, its wait ended, or it was answered otherwise)`),
  roomLocked: () => new Problem(403, "room_locked", "Room locked", "The host has locked this room: no one new may join"),
  openRoom: () => new Problem(409, "open_room", "Room has no join key", "Anyone with this room's ID may join it: there is no key to replace"),
  forbidden: (detail: string) => new Problem(403, "forbidden", "Forbidden", detail),
  roomNotFound: (roomId: string) =>
    new Problem(404, "room_not_found", "Room not found", `Room '${roomId}' does not exist, has expired or was closed`),
  peerNotFound: (peerId: string) => new Problem(404, "peer_not_found", "Peer not found", `Peer '${peerId}' is not in this room`),
  roomFull: (maxPeers: number) => new Problem(409, "room_full", "Room is full", `This room holds at most ${maxPeers} peers`),
  inboxFull: (peerId: string) =>
    new Problem(429, "inbox_full", "Recipient inbox is full", `Peer '${peerId}' has too many unread messages; retry once it has read them`, {}, { "retry-after": "1" }),
  roomBusy: () =>
    new Problem(429, "room_busy", "Room has too much unread mail", "This room's peers have too much unread mail for more; retry once they have read it", {}, { "retry-after": "2" }),
  tooManyWaiting: (max: number) =>
    new Problem(429, "too_many_waiting", "Too many waiting reads", `This address already holds ${max} waiting reads; end some, or read without 'wait'`, {}, { "retry-after": "5" }),
  /** The client went away mid-request: nobody reads this answer, and it is no defect of ours. */
  clientClosed: () => new Problem(400, "client_closed", "Client closed the request", "The connection closed before the request was complete"),
  rateLimited: (retryAfterSeconds: number, headers: Record<string, string> = {}) =>
    new Problem(429, "rate_limited", "Too many requests", `Rate limit exceeded; retry in ${retryAfterSeconds} s`, {}, { ...headers, "retry-after": String(retryAfterSeconds) }),
  storeUnavailable: (extra: Record<string, unknown> = {}) =>
    new Problem(503, "store_unavailable", "Store unavailable", "The signaling store cannot be reached; retry shortly", extra, { "retry-after": "2" }),
  /** Retry-After spread over 1–3 s, so that shed clients do not all come back at once. */
  storeBusy: (random = Math.random) =>
    new Problem(503, "store_busy", "Store busy", "The signaling store is answering slower than requests arrive; retry after Retry-After", {}, { "retry-after": String(1 + Math.floor(random() * 3)) }),
  authUnavailable: () =>
    new Problem(503, "auth_unavailable", "Authentication unavailable", "The identity provider's keys could not be fetched; retry shortly", {}, { "retry-after": "5" }),
  invalidSignature: () => new Problem(401, "invalid_signature", "Invalid signature", "This request is not signed by QStash for this deployment"),
  invalidIdempotencyKey: () =>
    new Problem(400, "invalid_idempotency_key", "Invalid Idempotency-Key", "Idempotency-Key must be 16 to 255 visible ASCII characters (a random UUID, say), the same for every retry of one request"),
  idempotencyKeyReused: () =>
    new Problem(422, "idempotency_key_reused", "Idempotency-Key reused", "This Idempotency-Key was sent with a different request: use a new key for each request, and the same key only to retry it"),
  internal: () => new Problem(500, "internal_error", "Internal error", "Something went wrong on our side"),
};
