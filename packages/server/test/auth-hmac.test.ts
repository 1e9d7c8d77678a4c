import { createHmac } from "node:crypto";
import { describe, expect, it } from "vitest";
import { SignJWT, type JWTPayload } from "jose";
import { ErrorCode } from "@arqon/core";
import { AuthError, createAuthenticator, type AuthOptions } from "../src/auth.js";

const SECRET = "hmac-test-secret-0123456789abcdef-0123";
const now = () => Math.floor(Date.now() / 1000);

function sign(payload: JWTPayload, alg = "HS256", secret = SECRET): Promise<string> {
  return new SignJWT(payload).setProtectedHeader({ alg, typ: "JWT" }).sign(new TextEncoder().encode(secret));
}

/** A compact JWS over arbitrary header and payload text (what SignJWT would never produce). */
function rawToken(header: unknown, payloadText: string, secret = SECRET): string {
  const h = Buffer.from(JSON.stringify(header)).toString("base64url");
  const p = Buffer.from(payloadText).toString("base64url");
  const alg = (header as { alg?: string }).alg ?? "HS256";
  const hash = { HS256: "sha256", HS384: "sha384", HS512: "sha512" }[alg] ?? "sha256";
  return `${h}.${p}.${createHmac(hash, secret).update(`${h}.${p}`).digest("base64url")}`;
}

async function outcome(token: string, options: Partial<AuthOptions> = {}): Promise<string> {
  const auth = createAuthenticator({ secret: SECRET, ...options });
  try {
    const ctx = await auth.verify(token);
    return `ok:${ctx.sub}`;
  } catch (err) {
    expect(err).toBeInstanceOf(AuthError);
    return `${(err as AuthError).code}:${(err as Error).message}`;
  }
}

const base = () => ({ sub: "alice", tenant: "acme", exp: now() + 60 });

describe("HS token verification (node:crypto path)", () => {
  it("accepts HS256, HS384 and HS512 when allowed, and only those listed", async () => {
    const algorithms = ["HS256", "HS384", "HS512"];
    for (const alg of algorithms) expect(await outcome(await sign(base(), alg), { algorithms })).toBe("ok:alice");
    expect(await outcome(await sign(base(), "HS384"))).toBe(`${ErrorCode.AUTH_INVALID}:token algorithm not allowed`);
    expect(await outcome(await sign(base()), { algorithms: ["RS256"] })).toBe(`${ErrorCode.AUTH_INVALID}:token algorithm not allowed`);
  });

  it("checks exp, nbf and iat like jose: types, the clock, the tolerance", async () => {
    expect(await outcome(await sign({ ...base(), exp: now() - 30 }))).toBe(`${ErrorCode.AUTH_EXPIRED}:token expired`);
    expect(await outcome(await sign({ ...base(), exp: now() - 2 }))).toBe("ok:alice"); // within the 5 s tolerance
    const { exp: _exp, ...noExp } = base();
    expect(await outcome(await sign(noExp))).toBe(`${ErrorCode.AUTH_INVALID}:token claim "exp" invalid`);
    expect(await outcome(await sign(noExp), { requireExp: false })).toBe("ok:alice");
    expect(await outcome(rawToken({ alg: "HS256" }, JSON.stringify({ ...base(), exp: "tomorrow" })))).toBe(`${ErrorCode.AUTH_INVALID}:token claim "exp" invalid`);
    expect(await outcome(await sign({ ...base(), nbf: now() + 60 }))).toBe(`${ErrorCode.AUTH_INVALID}:token claim "nbf" invalid`);
    expect(await outcome(await sign({ ...base(), nbf: now() + 2 }))).toBe("ok:alice");
    expect(await outcome(rawToken({ alg: "HS256" }, JSON.stringify({ ...base(), iat: "now" })))).toBe(`${ErrorCode.AUTH_INVALID}:token claim "iat" invalid`);
  });

  it("checks iss and aud when configured", async () => {
    const opts = { issuer: "https://id.example", audience: "arqon" };
    expect(await outcome(await sign({ ...base(), iss: "https://id.example", aud: "arqon" }), opts)).toBe("ok:alice");
    expect(await outcome(await sign({ ...base(), iss: "https://id.example", aud: ["other", "arqon"] }), opts)).toBe("ok:alice");
    expect(await outcome(await sign({ ...base(), iss: "https://evil.example", aud: "arqon" }), opts)).toBe(`${ErrorCode.AUTH_INVALID}:token claim "iss" invalid`);
    expect(await outcome(await sign({ ...base(), iss: "https://id.example", aud: ["other"] }), opts)).toBe(`${ErrorCode.AUTH_INVALID}:token claim "aud" invalid`);
    expect(await outcome(await sign({ ...base(), iss: "https://id.example" }), opts)).toBe(`${ErrorCode.AUTH_INVALID}:token claim "aud" invalid`);
  });

  it("refuses tampered, foreign, unsigned, critical-extension and malformed tokens", async () => {
    const good = await sign(base());
    const [h, , s] = good.split(".");
    const forged = `${h}.${Buffer.from(JSON.stringify({ ...base(), sub: "mallory" })).toString("base64url")}.${s}`;
    expect(await outcome(forged)).toBe(`${ErrorCode.AUTH_INVALID}:token signature invalid`);
    expect(await outcome(await sign(base(), "HS256", "another-secret-0123456789abcdef-xyz"))).toBe(`${ErrorCode.AUTH_INVALID}:token signature invalid`);
    expect(await outcome(`${good}x`)).toBe(`${ErrorCode.AUTH_INVALID}:token signature invalid`);
    const none = `${Buffer.from('{"alg":"none"}').toString("base64url")}.${good.split(".")[1]}.`;
    expect(await outcome(none)).toMatch(new RegExp(`^${ErrorCode.AUTH_INVALID}:`));
    expect(await outcome(none)).not.toMatch(/^ok/);
    expect(await outcome(rawToken({ alg: "HS256", crit: ["exp"], exp: 1 }, JSON.stringify(base())))).toBe(`${ErrorCode.AUTH_INVALID}:token malformed or unverifiable`);
    expect(await outcome(rawToken({ alg: "HS256" }, "[1,2,3]"))).toBe(`${ErrorCode.AUTH_INVALID}:token malformed or unverifiable`);
    expect(await outcome(rawToken({ alg: "HS256" }, "not json"))).toBe(`${ErrorCode.AUTH_INVALID}:token malformed or unverifiable`);
    // A padded segment decodes as jose decodes it (so the signature over it is what is wrong); 4n+1 characters never do.
    expect(await outcome(`${h}.e30=.${s}`)).toBe(`${ErrorCode.AUTH_INVALID}:token signature invalid`);
    expect(await outcome(`${h}.e30aa.${s}`)).toBe(`${ErrorCode.AUTH_INVALID}:token malformed or unverifiable`);
    expect(await outcome(`${h}.e3+0.${s}`)).toBe(`${ErrorCode.AUTH_INVALID}:token malformed or unverifiable`);
    expect(await outcome(`${good}.extra`)).toMatch(new RegExp(`^${ErrorCode.AUTH_INVALID}:`));
  });
});
