const EXPOSED = ["x-request-id", "x-session-id", "retry-after", "ratelimit-limit", "ratelimit-remaining", "ratelimit-reset", "location", "idempotent-replayed"];

/** CORS headers for every response, preflight included; `allowed` is "*" or a list of exact origins. */
export function corsHeaders(request: Request, allowed: "*" | string[], methods: string[]): Record<string, string> {
  const headers: Record<string, string> = {};
  const origin = request.headers.get("origin");
  if (allowed === "*") {
    headers["access-control-allow-origin"] = "*";
  } else {
    headers.vary = "Origin";
    if (origin && allowed.includes(origin)) headers["access-control-allow-origin"] = origin;
  }
  headers["access-control-expose-headers"] = EXPOSED.join(", ");
  if (request.method === "OPTIONS") {
    headers["access-control-allow-methods"] = [...methods, "OPTIONS"].join(", ");
    headers["access-control-allow-headers"] = "authorization, content-type, idempotency-key, last-event-id";
    headers["access-control-max-age"] = "600";
  }
  return headers;
}
