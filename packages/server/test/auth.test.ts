import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { SignJWT, exportJWK, exportSPKI, generateKeyPair } from "jose";
import { afterEach, describe, expect, it } from "vitest";
import { CloseCode, ErrorCode } from "@arqon/core";
import { startGateway, type TestGateway } from "../src/testing.js";

let gw: TestGateway | undefined;
const extra: Server[] = [];
afterEach(async () => {
  await gw?.close();
  gw = undefined;
  for (const s of extra.splice(0)) await new Promise((r) => s.close(r));
});

const b64url = (v: unknown) => Buffer.from(JSON.stringify(v)).toString("base64url");
const now = () => Math.floor(Date.now() / 1000);

async function expect401(result: Promise<{ status: number; headers: Record<string, unknown>; json?: { error?: { code: string; message?: string } } }>, code: string) {
  const r = await result;
  expect(r.status).toBe(401);
  expect(r.headers["www-authenticate"]).toMatch(/^Bearer/);
  expect(r.json?.error?.code).toBe(code);
  return r;
}

describe("gateway auth", () => {
  it("auth - missing token answers 401 ARQ_AUTH_MISSING before the upgrade", async () => {
    gw = await startGateway();
    const r = await expect401(gw.upgrade(), ErrorCode.AUTH_MISSING);
    expect(r.headers["content-type"]).toBe("application/json");
    expect(gw.server.connectionCount).toBe(0);
  });

  it("auth - malformed, expired, alg none and wrongly signed tokens answer 401 with their codes", async () => {
    gw = await startGateway({ auth: { secret: "s3cret-s3cret-s3cret-s3cret-s3cret", clockToleranceSec: 0 }, secret: "s3cret-s3cret-s3cret-s3cret-s3cret" });
    const bearer = (t: string) => ({ headers: { authorization: `Bearer ${t}` } });
    await expect401(gw.upgrade(bearer("not-a-jwt")), ErrorCode.AUTH_INVALID);
    await expect401(gw.upgrade(bearer(await gw.token({ ttlSec: -10 }))), ErrorCode.AUTH_EXPIRED);
    const none = `${b64url({ alg: "none", typ: "JWT" })}.${b64url({ sub: "alice", tenant: "acme", exp: now() + 60 })}.`;
    await expect401(gw.upgrade(bearer(none)), ErrorCode.AUTH_INVALID);
    const other = await new SignJWT({ tenant: "acme" }).setProtectedHeader({ alg: "HS256" }).setSubject("alice").setExpirationTime("1h").sign(Buffer.from("a-different-secret-of-enough-length"));
    const bad = await expect401(gw.upgrade(bearer(other)), ErrorCode.AUTH_INVALID);
    expect(bad.json?.error).toMatchObject({ message: "token signature invalid" });
    const noExp = await new SignJWT({ tenant: "acme" }).setProtectedHeader({ alg: "HS256" }).setSubject("alice").sign(Buffer.from(gw.secret));
    await expect401(gw.upgrade(bearer(noExp)), ErrorCode.AUTH_INVALID);
    const noTenant = await new SignJWT({}).setProtectedHeader({ alg: "HS256" }).setSubject("alice").setExpirationTime("1h").sign(Buffer.from(gw.secret));
    await expect401(gw.upgrade(bearer(noTenant)), ErrorCode.AUTH_INVALID);
    const hs384 = await new SignJWT({ tenant: "acme" }).setProtectedHeader({ alg: "HS384" }).setSubject("alice").setExpirationTime("1h").sign(Buffer.from(gw.secret));
    await expect401(gw.upgrade(bearer(hs384)), ErrorCode.AUTH_INVALID);
    expect((await gw.upgrade(bearer(await gw.token()))).status).toBe(101);
  });

  it("auth - HS256 signed with the RS public key is refused when RS256 is pinned", async () => {
    const { publicKey, privateKey } = await generateKeyPair("RS256", { extractable: true });
    const pem = await exportSPKI(publicKey);
    gw = await startGateway({ auth: { publicKeys: [pem], algorithms: ["RS256"] } });
    const forged = await new SignJWT({ tenant: "acme" }).setProtectedHeader({ alg: "HS256" }).setSubject("mallory").setExpirationTime("1h").sign(Buffer.from(pem));
    const r = await expect401(gw.upgrade({ headers: { authorization: `Bearer ${forged}` } }), ErrorCode.AUTH_INVALID);
    expect(r.json?.error?.message).toContain("not allowed");
    const good = await new SignJWT({ tenant: "acme" }).setProtectedHeader({ alg: "RS256" }).setSubject("alice").setExpirationTime("1h").sign(privateKey);
    const alice = await gw.client({ token: good });
    expect(alice.welcome.type).toBe("welcome");
  });

  it("auth - ES256 and EdDSA keys, aud and iss when configured", async () => {
    const es = await generateKeyPair("ES256");
    const ed = await generateKeyPair("EdDSA");
    gw = await startGateway({
      auth: {
        publicKeys: [await exportSPKI(es.publicKey), await exportSPKI(ed.publicKey)],
        algorithms: ["ES256", "EdDSA"],
        audience: "arqon",
        issuer: "https://issuer.test",
      },
    });
    const sign = (alg: string, key: Parameters<SignJWT["sign"]>[0], aud = "arqon", iss = "https://issuer.test") =>
      new SignJWT({ tenant: "acme" }).setProtectedHeader({ alg }).setSubject("alice").setAudience(aud).setIssuer(iss).setExpirationTime("1h").sign(key);
    expect((await gw.client({ token: await sign("ES256", es.privateKey) })).welcome.type).toBe("welcome");
    expect((await gw.client({ token: await sign("EdDSA", ed.privateKey) })).welcome.type).toBe("welcome");
    const wrongAud = await expect401(gw.upgrade({ headers: { authorization: `Bearer ${await sign("ES256", es.privateKey, "other")}` } }), ErrorCode.AUTH_INVALID);
    expect(wrongAud.json?.error?.message).toContain("aud");
    const wrongIss = await expect401(gw.upgrade({ headers: { authorization: `Bearer ${await sign("ES256", es.privateKey, "arqon", "https://evil.test")}` } }), ErrorCode.AUTH_INVALID);
    expect(wrongIss.json?.error?.message).toContain("iss");
  });

  it("auth - JWKS keys are fetched, cached, and unknown kids cannot force refetches", async () => {
    const { publicKey, privateKey } = await generateKeyPair("RS256");
    const jwk = { ...(await exportJWK(publicKey)), kid: "k1", alg: "RS256", use: "sig" };
    let fetches = 0;
    const jwks = createServer((_req, res) => {
      fetches++;
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ keys: [jwk] }));
    });
    extra.push(jwks);
    await new Promise<void>((r) => jwks.listen(0, "127.0.0.1", r));
    const port = (jwks.address() as AddressInfo).port;
    gw = await startGateway({ auth: { jwksUrl: `http://127.0.0.1:${port}/jwks.json`, algorithms: ["RS256"], jwksCooldownMs: 60_000 } });
    const sign = (kid: string) => new SignJWT({ tenant: "acme" }).setProtectedHeader({ alg: "RS256", kid }).setSubject("alice").setExpirationTime("1h").sign(privateKey);
    expect((await gw.client({ token: await sign("k1") })).welcome.type).toBe("welcome");
    expect((await gw.client({ token: await sign("k1") })).welcome.type).toBe("welcome");
    for (let i = 0; i < 5; i++) {
      await expect401(gw.upgrade({ headers: { authorization: `Bearer ${await sign(`unknown-${i}`)}` } }), ErrorCode.AUTH_INVALID);
    }
    expect(fetches).toBe(1);
  });

  it("auth - a JWKS endpoint that hangs fails within the timeout with 401", async () => {
    const hang = createServer(() => undefined);
    extra.push(hang);
    await new Promise<void>((r) => hang.listen(0, "127.0.0.1", r));
    const port = (hang.address() as AddressInfo).port;
    const { privateKey } = await generateKeyPair("RS256");
    gw = await startGateway({ auth: { jwksUrl: `http://127.0.0.1:${port}/jwks.json`, algorithms: ["RS256"], jwksTimeoutMs: 200 } });
    const token = await new SignJWT({ tenant: "acme" }).setProtectedHeader({ alg: "RS256", kid: "x" }).setSubject("alice").setExpirationTime("1h").sign(privateKey);
    const started = Date.now();
    const r = await expect401(gw.upgrade({ headers: { authorization: `Bearer ${token}` } }), ErrorCode.AUTH_INVALID);
    expect(r.json?.error?.message).toBe("token keys unavailable");
    expect(Date.now() - started).toBeLessThan(2000);
    hang.closeAllConnections();
  });

  it("auth - the token may come from ?token= or a bearer.<token> subprotocol", async () => {
    gw = await startGateway();
    expect((await gw.client({ tokenIn: "query" })).welcome.type).toBe("welcome");
    const viaProtocol = await gw.client({ tokenIn: "protocol", protocols: ["arqon.v1.json"] });
    expect(viaProtocol.ws.protocol).toBe("arqon.v1.json");
  });

  it("auth - an auth frame refreshes the token; another sub or tenant is ARQ_AUTH_MISMATCH", async () => {
    gw = await startGateway();
    const alice = await gw.client({ sub: "alice", ttlSec: 60 });
    const fresh = await gw.token({ sub: "alice", ttlSec: 7200 });
    const ok = await alice.request({ type: "auth", token: fresh });
    expect(ok.type).toBe("auth_ok");
    expect(ok.expiresAt).toBeGreaterThan(Date.now() + 3600_000);
    const mismatch = await alice.request({ type: "auth", token: await gw.token({ sub: "bob" }) });
    expect(mismatch.error?.code).toBe(ErrorCode.AUTH_MISMATCH);
    const otherTenant = await alice.request({ type: "auth", token: await gw.token({ sub: "alice", tenant: "globex" }) });
    expect(otherTenant.error?.code).toBe(ErrorCode.AUTH_MISMATCH);
    const expired = await alice.request({ type: "auth", token: await gw.token({ sub: "alice", ttlSec: -60 }) });
    expect(expired.error?.code).toBe(ErrorCode.AUTH_EXPIRED);
  });

  it("auth - a token that expires without refresh closes the connection with 4004", async () => {
    gw = await startGateway({ limits: { pingIntervalMs: 100, pongTimeoutMs: 1000 } });
    const token = await gw.token({ ttlSec: 1 });
    const alice = await gw.client({ token });
    const refreshed = await gw.client({ token });
    await refreshed.request({ type: "auth", token: await gw.token({ ttlSec: 60 }) });
    const closed = await alice.closed;
    expect(closed.code).toBe(CloseCode.TOKEN_EXPIRED);
    expect(closed.reason).toBe("token expired");
    expect((await refreshed.request({ type: "ping" })).type).toBe("pong");
  });
});

describe("gateway upgrade protection", () => {
  it("origin - an origin outside the allowlist gets 403 ARQ_ORIGIN_FORBIDDEN", async () => {
    gw = await startGateway({ allowedOrigins: ["https://app.example"] });
    const token = await gw.token();
    const r = await gw.upgrade({ headers: { authorization: `Bearer ${token}`, origin: "https://evil.example" } });
    expect(r.status).toBe(403);
    expect(r.json?.error?.code).toBe(ErrorCode.ORIGIN_FORBIDDEN);
    expect((await gw.upgrade({ headers: { authorization: `Bearer ${token}`, origin: "https://app.example" } })).status).toBe(101);
  });

  it("limits - connections per IP and per tenant are refused with 429 ARQ_TOO_MANY_CONNECTIONS", async () => {
    gw = await startGateway({ limits: { maxConnectionsPerIp: 2 } });
    await gw.client();
    await gw.client();
    const r = await gw.upgrade({ headers: { authorization: `Bearer ${await gw.token()}` } });
    expect(r.status).toBe(429);
    expect(r.json?.error?.code).toBe(ErrorCode.TOO_MANY_CONNECTIONS);
    await gw.close();
    gw = await startGateway({ tenantLimits: { small: { maxConnections: 1 } } });
    await gw.client({ tenant: "small" });
    const t = await gw.upgrade({ headers: { authorization: `Bearer ${await gw.token({ tenant: "small" })}` } });
    expect(t.status).toBe(429);
    expect(t.json?.error?.message).toContain("tenant");
    expect((await gw.client({ tenant: "big" })).welcome.tenant).toBe("big");
  });

  it("path - an upgrade elsewhere than /ws is 404", async () => {
    gw = await startGateway();
    const r = await gw.upgrade({ path: "/nope", headers: { authorization: `Bearer ${await gw.token()}` } });
    expect(r.status).toBe(404);
    expect(r.json?.error?.code).toBe(ErrorCode.NOT_FOUND);
  });
});
