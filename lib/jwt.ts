/** A JWT checked against an identity provider's JWKS (AUTH_JWKS_URL): see lib/deployment-auth.ts. */
import { createRemoteJWKSet, errors, jwtVerify, type JWTVerifyGetKey } from "jose";
import type { Config } from "./config.js";
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

/** Throws the problem a refused JWT answers (never the token itself). */
export async function verifyJwt(token: string, jwt: NonNullable<Config["jwt"]>): Promise<void> {
  try {
    await jwtVerify(token, keySet(jwt.jwksUrl), { issuer: jwt.issuer, audience: jwt.audience });
  } catch (error) {
    throw refusal(error);
  }
}
