/**
 * Who may create rooms on this deployment: anyone by default; with AUTH_SECRET, holders of that
 * static secret; with AUTH_JWKS_URL, bearers of a JWT signed by a key of that JWKS (the tokens
 * Supabase, Cognito, Auth0 and the like issue), checked for issuer and audience when configured.
 * Either credential is accepted when both are set. Also: who may run the AI session sweep.
 */
import { createRemoteJWKSet, errors, jwtVerify, type JWTVerifyGetKey } from "jose";
import type { Config } from "./config.js";
import { sameSecret } from "./ids.js";
import { problems, type Problem } from "./problem.js";

// One key set per URL and process: jose caches the keys and refetches on an unknown key id.
const keySets = new Map<string, JWTVerifyGetKey>();

function keySet(url: string): JWTVerifyGetKey {
  let set = keySets.get(url);
  if (!set) keySets.set(url, (set = createRemoteJWKSet(new URL(url), { timeoutDuration: 3000, cooldownDuration: 30_000 })));
  return set;
}

/** Why a JWT was refused, in words fit for a response (never the token itself). */
function refusal(error: unknown): Problem {
  // Unreachable (fetch's TypeError), too slow, or not serving a key set.
  if (error instanceof errors.JWKSTimeout || error instanceof errors.JWKSInvalid || error instanceof TypeError) {
    return problems.authUnavailable();
  }
  if (error instanceof errors.JWTExpired) return problems.forbidden("The token has expired");
  if (error instanceof errors.JWTClaimValidationFailed) return problems.forbidden(`The token's '${error.claim}' claim is not accepted here`);
  if (error instanceof errors.JWKSNoMatchingKey || error instanceof errors.JWSSignatureVerificationFailed) {
    return problems.forbidden("The token is not signed by this deployment's identity provider");
  }
  return problems.forbidden("The bearer token is neither this deployment's AUTH_SECRET nor a valid JWT");
}

export async function authorizeRoomCreation(config: Config, bearer: string | null): Promise<void> {
  const { authSecret, jwt } = config;
  if (!authSecret && !jwt) return;
  if (!bearer) throw problems.missingToken();
  if (authSecret && sameSecret(bearer, authSecret)) return;
  if (!jwt) throw problems.forbidden("Creating rooms needs this deployment's AUTH_SECRET as bearer token");
  try {
    await jwtVerify(bearer, keySet(jwt.jwksUrl), { issuer: jwt.issuer, audience: jwt.audience });
  } catch (error) {
    throw refusal(error);
  }
}

/** The session sweep (GET /api/session/expire) answers only Vercel Cron, which sends CRON_SECRET as bearer. */
export function authorizeCron(config: Config, bearer: string | null): void {
  if (!config.cronSecret) throw problems.forbidden("Set CRON_SECRET to let Vercel Cron end AI calls past their deadline");
  if (!bearer) throw problems.missingToken();
  if (!sameSecret(bearer, config.cronSecret)) throw problems.forbidden("The bearer token is not this deployment's CRON_SECRET");
}
