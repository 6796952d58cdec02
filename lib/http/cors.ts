import type { IncomingMessage, ServerResponse } from "node:http";

const EXPOSED = ["x-request-id", "x-session-id", "retry-after", "ratelimit-limit", "ratelimit-remaining", "ratelimit-reset", "location"];

/** CORS on every response, preflight included; `allowed` is "*" or a list of exact origins. */
export function applyCors(req: IncomingMessage, res: ServerResponse, allowed: "*" | string[], methods: string[]) {
  const origin = req.headers.origin;
  if (allowed === "*") {
    res.setHeader("access-control-allow-origin", "*");
  } else {
    res.setHeader("vary", "Origin");
    if (origin && allowed.includes(origin)) res.setHeader("access-control-allow-origin", origin);
  }
  res.setHeader("access-control-expose-headers", EXPOSED.join(", "));
  if (req.method === "OPTIONS") {
    res.setHeader("access-control-allow-methods", [...methods, "OPTIONS"].join(", "));
    res.setHeader("access-control-allow-headers", "authorization, content-type");
    res.setHeader("access-control-max-age", "600");
  }
}
