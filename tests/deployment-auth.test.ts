/**
 * Room creation behind a deployment credential: AUTH_SECRET, or a JWT verified against a JWKS
 * (served here by a local HTTP server, as an identity provider would), with issuer and
 * audience checked; either is accepted when both are configured.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { apiClient, startHarness, type Api, type ApiResponse, type Harness } from "./support/harness.js";

const ISSUER = "https://id.example.test/";
const AUDIENCE = "signalbox";
const SECRET = "deployment-secret-for-tests";

function expectProblem(res: ApiResponse, status: number, code: string, detail?: RegExp) {
  expect(res.status, JSON.stringify(res.body)).toBe(status);
  expect(res.headers.get("content-type")).toMatch(/^application\/problem\+json/);
  expect(res.body.code).toBe(code);
  if (detail) expect(res.body.detail).toMatch(detail);
}

describe("room creation with AUTH_JWKS_URL (and AUTH_SECRET)", () => {
  let jwks: Server;
  let h: Harness;
  let api: Api;
  let key: CryptoKey;
  let stranger: CryptoKey;
  let jwksFetches = 0;

  const sign = (claims: { iss?: string; aud?: string; exp?: string | number } = {}, signer = key, kid = "k1") =>
    new SignJWT({ sub: "user-1" })
      .setProtectedHeader({ alg: "ES256", kid })
      .setIssuedAt()
      .setIssuer(claims.iss ?? ISSUER)
      .setAudience(claims.aud ?? AUDIENCE)
      .setExpirationTime(claims.exp ?? "5m")
      .sign(signer);

  beforeAll(async () => {
    const pair = await generateKeyPair("ES256", { extractable: true });
    key = pair.privateKey;
    stranger = (await generateKeyPair("ES256")).privateKey;
    const publicJwk = { ...(await exportJWK(pair.publicKey)), kid: "k1", alg: "ES256", use: "sig" };
    jwks = createServer((req, res) => {
      jwksFetches++;
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ keys: [publicJwk] }));
    });
    await new Promise<void>((ready) => jwks.listen(0, "127.0.0.1", ready));
    const jwksUrl = `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/.well-known/jwks.json`;
    h = await startHarness("memory", { AUTH_JWKS_URL: jwksUrl, AUTH_JWT_ISSUER: ISSUER, AUTH_JWT_AUDIENCE: `other-app, ${AUDIENCE}`, AUTH_SECRET: SECRET });
    api = apiClient(h.url);
  });
  afterAll(async () => {
    await h?.close();
    jwks?.close();
  });

  it("accepts a JWT from the identity provider, and the static secret", async () => {
    const created = await api.post("/api/rooms", {}, await sign());
    expect(created.status).toBe(201);
    expect((await api.post("/api/rooms", {}, SECRET)).status).toBe(201);
    // The key set is fetched once and cached, not per request.
    for (let i = 0; i < 3; i++) expect((await api.post("/api/rooms", {}, await sign())).status).toBe(201);
    expect(jwksFetches).toBe(1);
    // Joining stays open to anyone with the room ID.
    expect((await api.post("/api/peers", { roomId: created.body.roomId })).status).toBe(201);
  });

  it("refuses missing, expired, foreign and mis-addressed tokens, saying why", async () => {
    expectProblem(await api.post("/api/rooms", {}), 401, "missing_token");
    expectProblem(await api.post("/api/rooms", {}, await sign({ exp: Math.floor(Date.now() / 1000) - 60 })), 403, "forbidden", /expired/);
    expectProblem(await api.post("/api/rooms", {}, await sign({ iss: "https://evil.example.test/" })), 403, "forbidden", /'iss'/);
    expectProblem(await api.post("/api/rooms", {}, await sign({ aud: "someone-else" })), 403, "forbidden", /'aud'/);
    expectProblem(await api.post("/api/rooms", {}, await sign({}, stranger)), 403, "forbidden", /not signed by/);
    expectProblem(await api.post("/api/rooms", {}, await sign({}, stranger, "unknown-kid")), 403, "forbidden", /not signed by/);
    const unsigned = `${Buffer.from('{"alg":"none"}').toString("base64url")}.${Buffer.from(JSON.stringify({ iss: ISSUER, aud: AUDIENCE })).toString("base64url")}.`;
    expectProblem(await api.post("/api/rooms", {}, unsigned), 403, "forbidden");
    expectProblem(await api.post("/api/rooms", {}, "not-a-jwt"), 403, "forbidden");
    expectProblem(await api.post("/api/rooms", {}, `${SECRET}x`), 403, "forbidden");
  });

  it("answers 503 with Retry-After when the key set cannot be fetched", async () => {
    const down = await startHarness("memory", { AUTH_JWKS_URL: "http://127.0.0.1:9/jwks.json" });
    try {
      const res = await apiClient(down.url).post("/api/rooms", {}, await sign());
      expectProblem(res, 503, "auth_unavailable");
      expect(res.headers.get("retry-after")).toBe("5");
    } finally {
      await down.close();
    }
  });
});
