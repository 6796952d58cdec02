/**
 * Who may create rooms on this deployment: anyone by default; with AUTH_SECRET, holders of that
 * static secret; with AUTH_JWKS_URL, bearers of a JWT signed by a key of that JWKS (the tokens
 * Supabase, Cognito, Auth0 and the like issue), checked for issuer and audience when configured.
 * Either credential is accepted when both are set. Also: who may run the AI session sweep.
 */
import type { Config } from "./config.js";
import { sameSecret } from "./ids.js";
import { problems } from "./problem.js";

export async function authorizeRoomCreation(config: Config, bearer: string | null): Promise<void> {
  const { authSecret, jwt } = config;
  if (!authSecret && !jwt) return;
  if (!bearer) throw problems.missingToken();
  if (authSecret && sameSecret(bearer, authSecret)) return;
  if (!jwt) throw problems.forbidden("Creating rooms needs this deployment's AUTH_SECRET as bearer token");
  // jose is loaded only by a deployment that takes JWTs.
  const { verifyJwt } = await import("./jwt.js");
  await verifyJwt(bearer, jwt);
}

/**
 * The session sweep by QStash (POST /api/session/expire): only a message QStash signed with this
 * deployment's signing keys, for this body sent to this URL.
 */
export async function authorizeQStash(config: Config, signature: string | null, body: string, url: string): Promise<void> {
  if (!config.qstash) throw problems.forbidden("Set QSTASH_TOKEN and its signing keys to let QStash end AI calls past their deadline");
  const { signedByQStash } = await import("./openai/qstash.js");
  if (!signature || !(await signedByQStash(config.qstash, signature, body, url))) throw problems.invalidSignature();
}

/** The session sweep (GET /api/session/expire) answers only Vercel Cron, which sends CRON_SECRET as bearer. */
export function authorizeCron(config: Config, bearer: string | null): void {
  if (!config.cronSecret) throw problems.forbidden("Set CRON_SECRET to let Vercel Cron end AI calls past their deadline");
  if (!bearer) throw problems.missingToken();
  if (!sameSecret(bearer, config.cronSecret)) throw problems.forbidden("The bearer token is not this deployment's CRON_SECRET");
}
