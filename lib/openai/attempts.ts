/**
 * One request to OpenAI, tried as often as it safely may be: what an attempt came to, when to try
 * again, and what a final failure tells our client (never a key). One policy for both APIs.
 */
import { Problem } from "../problem.js";

export const upstreamProblem = (status: number, code: string, title: string, detail: string, headers: Record<string, string> = {}) =>
  new Problem(status, code, title, detail, {}, headers);

/**
 * OpenAI's (or a gateway's) error messages can quote a key, whole or masked; never pass one on.
 * Gone: anything shaped like an OpenAI key, and any word holding the start of one of `secrets`
 * (the configured key, whatever its format), or masked with its last four characters.
 */
export function redactSecrets(text: string, secrets: string[] = []): string {
  let redacted = text.replace(/\b(sk|ek|rk)[-_][A-Za-z0-9_*\-.]{4,}/g, "[redacted]");
  for (const secret of secrets.filter((s) => s.length >= 8)) {
    const head = secret.slice(0, 8);
    const tail = secret.slice(-4);
    redacted = redacted.split(secret).join("[redacted]");
    redacted = redacted.replace(/[^\s"'`,;()[\]{}<>]+/g, (word) =>
      word.includes(head) || (word.includes("*") && word.endsWith(tail)) ? "[redacted]" : word,
    );
  }
  return redacted;
}

export interface Attempt {
  res?: Response;
  body?: string;
  error?: unknown;
  timedOut?: boolean;
}

/** Delay before the next attempt: OpenAI's retry-after-ms, then retry-after, else backoff with jitter. */
export function retryDelay(res: Response | undefined, attempt: number, backoffMs: number, random = Math.random): number {
  const ms = Number(res?.headers.get("retry-after-ms"));
  if (Number.isFinite(ms) && ms > 0 && ms < 60_000) return ms;
  const seconds = Number(res?.headers.get("retry-after"));
  if (Number.isFinite(seconds) && seconds > 0 && seconds <= 60) return seconds * 1000;
  return backoffMs * 2 ** attempt * (0.75 + random() / 2);
}

/** Errors raised before a request could leave: nothing reached OpenAI, so nothing started. */
const NOT_SENT = new Set(["ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN", "EHOSTUNREACH", "ENETUNREACH"]);

/**
 * A request that starts a billed call or session is retried only when it cannot have started
 * one: it never left (connection refused), or OpenAI refused it (one naming a call is never
 * retried: see OpenAIUpstream). A connection reset or timeout may have reached OpenAI: no
 * retry. Other requests retry on any network error.
 */
export function shouldRetry(attempt: Attempt, startsCall: boolean): boolean {
  if (attempt.timedOut) return false;
  if (!attempt.res) return !startsCall || NOT_SENT.has(((attempt.error as Error)?.cause as NodeJS.ErrnoException)?.code ?? "");
  const hint = attempt.res.headers.get("x-should-retry");
  if (hint === "true") return true;
  if (hint === "false") return false;
  const status = attempt.res.status;
  if (status === 429) return !attempt.body?.includes("insufficient_quota");
  return status === 408 || status === 409 || status >= 500;
}

function upstreamMessage(body: string | undefined, secrets: string[]): string {
  try {
    const message = (JSON.parse(body ?? "") as { error?: { message?: string } }).error?.message;
    return message ? redactSecrets(message, secrets) : "no details";
  } catch {
    return "no details";
  }
}

/** Turns a final upstream failure into our problem document (no upstream secrets in it, nor `secrets`). */
export function failure(attempt: Attempt, retried: boolean, secrets: string[]): Problem {
  if (attempt.timedOut) return upstreamProblem(504, "upstream_timeout", "OpenAI did not answer in time", "OpenAI did not answer in time; try again");
  const res = attempt.res;
  if (!res) return upstreamProblem(503, "upstream_unavailable", "OpenAI unreachable", "OpenAI could not be reached; try again shortly", { "retry-after": "5" });
  const status = res.status;
  if (status === 401) return upstreamProblem(502, "upstream_auth_failed", "OpenAI refused the server's credentials", "OpenAI rejected this server's API key: the operator must fix OPENAI_API_KEY");
  if (status === 403) return upstreamProblem(502, "upstream_forbidden", "OpenAI refused the request", `OpenAI refused access: ${upstreamMessage(attempt.body, secrets)}`);
  if (status === 429 && attempt.body?.includes("insufficient_quota")) {
    return upstreamProblem(503, "upstream_quota_exhausted", "OpenAI quota exhausted", "The OpenAI account behind this server has no quota left");
  }
  if (status === 429 || status >= 500 || status === 408 || status === 409) {
    const seconds = Math.ceil(retryDelay(res, 0, 1000) / 1000);
    return upstreamProblem(503, "upstream_unavailable", "OpenAI unavailable", `OpenAI answered ${status}${retried ? " on every attempt" : ""}; try again shortly`, { "retry-after": String(seconds) });
  }
  if (status === 400 || status === 404 || status === 422) {
    return upstreamProblem(400, "upstream_rejected", "OpenAI rejected the session", `OpenAI rejected the offer or session: ${upstreamMessage(attempt.body, secrets)}`);
  }
  return upstreamProblem(502, "upstream_error", "Unexpected answer from OpenAI", `OpenAI answered ${status}`);
}

