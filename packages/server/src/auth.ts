import { createHmac, createPublicKey, timingSafeEqual, webcrypto, type KeyObject } from "node:crypto";
import type { IncomingMessage } from "node:http";
import { SignJWT, createRemoteJWKSet, jwtVerify, type JWK, type JWTPayload, type JWTVerifyGetKey, type JWSHeaderParameters } from "jose";
import { ArqonError, ErrorCode, isValidTenant, roomMatches } from "@arqon/core";
import { SUBPROTOCOL_BEARER_PREFIX } from "./config.js";
import { queryParam } from "./http-util.js";

/** Room patterns a token grants per action (see docs/security.md). Absent claim: every room of the tenant. */
export interface Capabilities {
  /** Rooms the holder may subscribe to (and read history and state of). */
  sub?: string[];
  /** Rooms the holder may publish to (and write state of). */
  pub?: string[];
  /** Rooms whose presence the holder may see (member lists and join/leave events). */
  presence?: string[];
  /** op.store namespaces the holder may read and write (the default namespace is "default"). */
  store?: string[];
}

/** One action a token's capabilities grant rooms for: "sub", "pub", "presence" or "store" (what `can` checks). */
export type Capability = keyof Capabilities;

/**
 * How the gateway verifies bearer tokens. At least one of `secret`, `publicKeys` or `jwksUrl` is required
 * (`createAuthenticator` throws ARQ_AUTH_INVALID otherwise).
 */
export interface AuthOptions {
  /** HMAC secret for HS256/384/512 (a string is taken as its UTF-8 bytes). */
  secret?: string | Uint8Array;
  /** Public keys for RS*, PS*, ES*, EdDSA: PEM (SPKI) text, a JWK, or a KeyObject. A JWK's `kid` is matched. */
  publicKeys?: Array<string | JWK | KeyObject>;
  /** A JWKS endpoint; keys are cached and refetched at most once per `jwksCooldownMs`. */
  jwksUrl?: string;
  /** Minimum time between two JWKS fetches (an unknown `kid` cannot force more). @default 30000 */
  jwksCooldownMs?: number;
  /** A JWKS fetch slower than this fails (the connection gets 401). @default 5000 */
  jwksTimeoutMs?: number;
  /** Keys older than this are refetched. @default 600000 */
  jwksCacheMaxAgeMs?: number;
  /**
   * Accepted `alg` values; anything else is refused, `none` always is.
   * @default ["HS256"] with a secret, ["RS256", "ES256", "EdDSA"] with public keys or JWKS (both lists with both)
   */
  algorithms?: string[];
  /** Required `iss`, when set. */
  issuer?: string | string[];
  /** Required `aud`, when set. */
  audience?: string | string[];
  /** Tokens without `exp` are refused. @default true */
  requireExp?: boolean;
  /** Leeway for `exp`/`nbf`, in seconds. @default 5 */
  clockToleranceSec?: number;
  /** The claim holding the tenant id. @default "tenant" */
  tenantClaim?: string;
  /** Tenant of tokens without the tenant claim; unset means such tokens are refused. */
  defaultTenant?: string;
  /** The claim holding the role; "admin" lifts capability checks and allows admin-only commands. @default "role" */
  roleClaim?: string;
  /** The claim holding capabilities. @default "caps" */
  capsClaim?: string;
  /** Marks the server as running with a local development key; it says so loudly in its logs. @default false */
  dev?: boolean;
  /**
   * Internal, for benchmarks and the equivalence property test: which code verifies HS256/384/512 tokens, ours on
   * node:crypto or jose's `jwtVerify` (its HMAC key imported once per algorithm). Not a supported setting.
   * @default "builtin"
   */
  hmacVerifier?: "builtin" | "jose";
}

/** Who a connection is: the verified facts of its token. */
export interface AuthContext {
  /** The token's `sub` claim (1-256 characters). */
  sub: string;
  /** The tenant id: the `tenantClaim` claim, or `defaultTenant` when the token has none. */
  tenant: string;
  /** The `roleClaim` claim, when it is a string. */
  role?: string;
  /** Whether the role is "admin": capability checks are lifted and admin-only commands allowed. */
  admin: boolean;
  /** The capabilities claim; undefined when the token has none (every room of the tenant). */
  caps?: Capabilities;
  /** Token expiry, epoch milliseconds; undefined when the token has none. */
  expiresAt?: number;
  /** The whole verified payload. */
  claims: JWTPayload;
  /** Presence info (UTF-8 JSON) the connect proxy hook gave the connection: its members' default `info`. */
  info?: Uint8Array;
}

/** An authentication failure with its HTTP status (401) and code. */
export class AuthError extends ArqonError {
  /** The HTTP status to answer with: always 401. */
  readonly status: number;
  constructor(code: string, message: string, options?: ErrorOptions) {
    super(code, message, options);
    this.name = "AuthError";
    this.status = 401;
  }
}

const MAX_TOKEN_LENGTH = 16 * 1024;

/** Verifies bearer tokens (made by `createAuthenticator`). */
export interface Authenticator {
  /**
   * Verifies a token (algorithm, signature, exp/nbf, iss/aud, then `sub`, tenant and capabilities) and resolves with
   * who it is. Rejects with an `AuthError`: ARQ_AUTH_MISSING without a token (undefined or ""), ARQ_AUTH_EXPIRED
   * when it expired, ARQ_AUTH_INVALID for anything else (too long, malformed, bad signature or claims).
   */
  verify(token: string | undefined): Promise<AuthContext>;
  /** Whether `AuthOptions.dev` is set (the server then logs a DEV MODE warning). */
  readonly dev: boolean;
}

function familyMatches(alg: string, key: KeyObject): boolean {
  const type = key.asymmetricKeyType;
  if (alg.startsWith("RS") || alg.startsWith("PS")) return type === "rsa" || type === "rsa-pss";
  if (alg.startsWith("ES")) return type === "ec";
  if (alg === "EdDSA" || alg === "Ed25519") return type === "ed25519" || type === "ed448";
  return false;
}

function toKeyObject(key: string | JWK | KeyObject): { key: KeyObject; kid?: string } {
  if (typeof key === "string") return { key: createPublicKey(key) };
  if ("asymmetricKeyType" in key && typeof (key as KeyObject).export === "function") return { key: key as KeyObject };
  const jwk = key as JWK;
  return { key: createPublicKey({ key: jwk as import("node:crypto").JsonWebKey, format: "jwk" }), kid: jwk.kid };
}

/** Reads a capabilities claim (or a proxy hook's `caps` answer); throws ARQ_AUTH_INVALID when it is malformed. */
export function parseCaps(value: unknown): Capabilities | undefined {
  if (value === undefined) return undefined;
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new AuthError(ErrorCode.AUTH_INVALID, "capabilities claim must be an object of room pattern lists");
  }
  const caps: Capabilities = {};
  for (const action of ["sub", "pub", "presence", "store"] as const) {
    const list = (value as Record<string, unknown>)[action];
    if (list === undefined) continue;
    if (!Array.isArray(list) || list.some((p) => typeof p !== "string") || list.length > 256) {
      throw new AuthError(ErrorCode.AUTH_INVALID, `capabilities "${action}" must be a list of room patterns`);
    }
    caps[action] = list as string[];
  }
  return caps;
}

/** Maps jose's failures onto our codes; the message says what was wrong without echoing the token. */
function toAuthError(err: unknown): AuthError {
  if (err instanceof AuthError) return err;
  const code = (err as { code?: string }).code;
  switch (code) {
    case "ERR_JWT_EXPIRED":
      return new AuthError(ErrorCode.AUTH_EXPIRED, "token expired", { cause: err });
    case "ERR_JOSE_ALG_NOT_ALLOWED":
      return new AuthError(ErrorCode.AUTH_INVALID, "token algorithm not allowed", { cause: err });
    case "ERR_JWS_SIGNATURE_VERIFICATION_FAILED":
      return new AuthError(ErrorCode.AUTH_INVALID, "token signature invalid", { cause: err });
    case "ERR_JWT_CLAIM_VALIDATION_FAILED": {
      const claim = (err as { claim?: string }).claim;
      return new AuthError(ErrorCode.AUTH_INVALID, `token claim "${claim}" invalid`, { cause: err });
    }
    case "ERR_JWKS_TIMEOUT":
    case "ERR_JWKS_INVALID":
      return new AuthError(ErrorCode.AUTH_INVALID, "token keys unavailable", { cause: err });
    case "ERR_JWKS_NO_MATCHING_KEY":
      return new AuthError(ErrorCode.AUTH_INVALID, "no key matches the token", { cause: err });
    default:
      return new AuthError(ErrorCode.AUTH_INVALID, "token malformed or unverifiable", { cause: err });
  }
}

const BASE64URL = /^[A-Za-z0-9_-]*$/;
const FORGIVING = /^[A-Za-z0-9+/]*$/;

/**
 * A base64url segment decoded exactly as jose decodes it on Node 20 (WHATWG `atob` after mapping `-_` to `+/`):
 * `+` and `/` are refused, ASCII whitespace is skipped, one or two `=` of correct padding are accepted, a length of
 * 4n+1 is refused. Undefined when jose would refuse it.
 */
function decodeSegment(segment: string): Buffer | undefined {
  if (BASE64URL.test(segment)) return segment.length % 4 === 1 ? undefined : Buffer.from(segment, "base64url");
  if (segment.includes("+") || segment.includes("/")) return undefined;
  let b = segment.replace(/-/g, "+").replace(/_/g, "/").replace(/[\t\n\f\r ]/g, "");
  if (b.length % 4 === 0) b = b.endsWith("==") ? b.slice(0, -2) : b.endsWith("=") ? b.slice(0, -1) : b;
  if (b.length % 4 === 1 || !FORGIVING.test(b)) return undefined;
  return Buffer.from(b, "base64");
}
const HMAC_HASH: Record<string, string> = { HS256: "sha256", HS384: "sha384", HS512: "sha512" };

function claimError(claim: string): AuthError {
  return new AuthError(ErrorCode.AUTH_INVALID, `token claim "${claim}" invalid`);
}

const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

/** A base64url JSON object segment (header or claims); `strict` refuses malformed UTF-8 (jose does, for the claims). */
function parseSegment(segment: string, strict = false): Record<string, unknown> {
  const bytes = decodeSegment(segment);
  if (!bytes) throw new AuthError(ErrorCode.AUTH_INVALID, "token malformed or unverifiable");
  return parseJsonObject(bytes, strict);
}

function parseJsonObject(bytes: Buffer, strict: boolean): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(strict ? strictUtf8.decode(bytes) : bytes.toString("utf8"));
  } catch (err) {
    throw new AuthError(ErrorCode.AUTH_INVALID, "token malformed or unverifiable", { cause: err });
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new AuthError(ErrorCode.AUTH_INVALID, "token malformed or unverifiable");
  }
  return value as Record<string, unknown>;
}

interface ClaimRules {
  issuer?: string | string[];
  audience?: string | string[];
  clockToleranceSec: number;
  requireExp: boolean;
}

/** A compact JWS split into its segments, with its header read (not verified). */
interface CompactJws {
  header: Readonly<Record<string, unknown>>;
  /** `header.payload`, what the signature covers. */
  signingInput: string;
  payload: string;
  signature: string;
}

/** Splits a compact JWS and reads its header; undefined when that fails (jose then reports what is wrong). */
function readCompactJws(token: string): CompactJws | undefined {
  const first = token.indexOf(".");
  const second = first < 0 ? -1 : token.indexOf(".", first + 1);
  if (first <= 0 || second < 0 || token.indexOf(".", second + 1) >= 0) return undefined;
  const h = token.slice(0, first);
  const payload = token.slice(first + 1, second);
  const signature = token.slice(second + 1);
  let header = headerCache.get(h);
  if (!header) {
    try {
      header = Object.freeze(parseSegment(h));
    } catch {
      return undefined;
    }
    // One issuer's tokens share a header segment; a few distinct ones are remembered (read-only), no more.
    if (headerCache.size < HEADER_CACHE_SIZE && h.length <= 512) headerCache.set(h, header);
  }
  return { header, signingInput: token.slice(0, second), payload, signature };
}

const HEADER_CACHE_SIZE = 32;
/** Parsed JOSE headers by their encoded segment (unverified: only read to choose the verification path). */
const headerCache = new Map<string, Readonly<Record<string, unknown>>>();

/**
 * HS256/384/512 verification on node:crypto (HMAC and a constant-time compare), with the registered-claim checks
 * jose applies (exp, nbf, iat types; exp and nbf against the clock with tolerance; iss; aud). jose's path goes through
 * WebCrypto, which on Node 20 costs ~60-250 µs per token against ~10 µs here: at the upgrade that is most of a
 * handshake's CPU. The signature is checked before anything in the payload is read.
 */
function verifyHmacJwt(jws: CompactJws, alg: string, secret: Buffer, algorithms: readonly string[], rules: ClaimRules): JWTPayload {
  if (!algorithms.includes(alg)) throw new AuthError(ErrorCode.AUTH_INVALID, "token algorithm not allowed");
  const given = decodeSegment(jws.signature);
  const claims = decodeSegment(jws.payload);
  if (!given || !claims) throw new AuthError(ErrorCode.AUTH_INVALID, "token malformed or unverifiable");
  checkCrit(jws.header);
  const expected = createHmac(HMAC_HASH[alg]!, secret).update(jws.signingInput).digest();
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    throw new AuthError(ErrorCode.AUTH_INVALID, "token signature invalid");
  }
  const payload = parseJsonObject(claims, true) as JWTPayload;
  const now = Math.floor(Date.now() / 1000);
  const tolerance = rules.clockToleranceSec;
  // Every failure but expiry is AUTH_INVALID; expiry is checked last, as jose does, so both answer alike.
  for (const claim of ["exp", "nbf", "iat"] as const) {
    if (payload[claim] !== undefined && typeof payload[claim] !== "number") throw claimError(claim);
  }
  if (payload.exp === undefined && rules.requireExp) throw claimError("exp");
  if (payload.nbf !== undefined && payload.nbf > now + tolerance) throw claimError("nbf");
  if (rules.issuer !== undefined) {
    const allowed = Array.isArray(rules.issuer) ? rules.issuer : [rules.issuer];
    if (typeof payload.iss !== "string" || !allowed.includes(payload.iss)) throw claimError("iss");
  }
  if (rules.audience !== undefined) {
    const wanted = Array.isArray(rules.audience) ? rules.audience : [rules.audience];
    const aud = payload.aud;
    const has = typeof aud === "string" ? wanted.includes(aud) : Array.isArray(aud) && aud.some((a) => wanted.includes(a));
    if (!has) throw claimError("aud");
  }
  if (payload.exp !== undefined && payload.exp <= now - tolerance) throw new AuthError(ErrorCode.AUTH_EXPIRED, "token expired");
  return payload;
}

/**
 * RFC 7515 4.1.11 as jose applies it: `crit` is a non-empty list of names present in the header, and the only
 * extension understood is `b64`, which must then be `true` (a JWT never has an unencoded payload).
 */
function checkCrit(header: Readonly<Record<string, unknown>>): void {
  const crit = header.crit;
  if (crit === undefined) return;
  const malformed = () => new AuthError(ErrorCode.AUTH_INVALID, "token malformed or unverifiable");
  if (!Array.isArray(crit) || crit.length === 0 || crit.some((p) => typeof p !== "string" || p.length === 0)) throw malformed();
  for (const name of crit as string[]) if (name !== "b64" || header[name] === undefined) throw malformed();
  if (header.b64 !== true) throw malformed();
}

/**
 * Builds the token verifier. HS256/384/512 tokens are checked against `secret` (on node:crypto); any other algorithm
 * goes through jose with the `publicKeys` (matched by `kid`, else by key type) or the JWKS. Throws ARQ_AUTH_INVALID
 * when there is no secret, public key or JWKS URL, or when `algorithms` contains "none".
 */
export function createAuthenticator(options: AuthOptions): Authenticator {
  const secretBytes =
    options.secret === undefined ? undefined : typeof options.secret === "string" ? Buffer.from(options.secret, "utf8") : Buffer.from(options.secret);
  const staticKeys = (options.publicKeys ?? []).map(toKeyObject);
  const jwks = options.jwksUrl
    ? createRemoteJWKSet(new URL(options.jwksUrl), {
        cooldownDuration: options.jwksCooldownMs ?? 30_000,
        timeoutDuration: options.jwksTimeoutMs ?? 5_000,
        cacheMaxAge: options.jwksCacheMaxAgeMs ?? 600_000,
      })
    : undefined;
  if (!secretBytes && staticKeys.length === 0 && !jwks) {
    throw new ArqonError(ErrorCode.AUTH_INVALID, "auth needs a secret, public keys or a JWKS URL");
  }
  const algorithms = options.algorithms ?? [
    ...(secretBytes ? ["HS256"] : []),
    ...(staticKeys.length > 0 || jwks ? ["RS256", "ES256", "EdDSA"] : []),
  ];
  if (algorithms.some((a) => a.toLowerCase() === "none")) {
    throw new ArqonError(ErrorCode.AUTH_INVALID, 'algorithm "none" cannot be enabled');
  }
  const tenantClaim = options.tenantClaim ?? "tenant";
  const roleClaim = options.roleClaim ?? "role";
  const capsClaim = options.capsClaim ?? "caps";
  const requireExp = options.requireExp ?? true;
  const hmacRules: ClaimRules = {
    issuer: options.issuer,
    audience: options.audience,
    clockToleranceSec: options.clockToleranceSec ?? 5,
    requireExp,
  };

  const joseHmac = options.hmacVerifier === "jose";
  const hmacKeys = new Map<string, Promise<webcrypto.CryptoKey>>();
  const hmacKey = (alg: string): Promise<webcrypto.CryptoKey> => {
    let key = hmacKeys.get(alg);
    if (!key) {
      key = webcrypto.subtle.importKey("raw", secretBytes!, { name: "HMAC", hash: `SHA-${alg.slice(2)}` }, false, ["verify"]);
      hmacKeys.set(alg, key);
    }
    return key;
  };

  const getKey: JWTVerifyGetKey = async (header: JWSHeaderParameters, token) => {
    const alg = header.alg ?? "";
    if (joseHmac && secretBytes && HMAC_HASH[alg] !== undefined) return hmacKey(alg);
    // HS256/384/512 with a configured secret never get here (verifyHmacJwt); any other HS token is refused.
    if (alg.startsWith("HS")) throw new AuthError(ErrorCode.AUTH_INVALID, "token algorithm not allowed");
    if (header.kid !== undefined) {
      const byKid = staticKeys.find((k) => k.kid === header.kid);
      if (byKid) return byKid.key;
    }
    if (jwks) return jwks(header, token);
    const byFamily = staticKeys.find((k) => k.kid === undefined && familyMatches(alg, k.key));
    if (byFamily) return byFamily.key;
    throw new AuthError(ErrorCode.AUTH_INVALID, "no key matches the token");
  };

  return {
    dev: options.dev ?? false,
    async verify(token) {
      if (token === undefined || token === "") throw new AuthError(ErrorCode.AUTH_MISSING, "a bearer token is required");
      if (token.length > MAX_TOKEN_LENGTH) throw new AuthError(ErrorCode.AUTH_INVALID, "token too long");
      let payload: JWTPayload;
      try {
        // HS tokens with a configured secret: the header is read once and the rest is checked here (node:crypto).
        const jws = secretBytes && !joseHmac ? readCompactJws(token) : undefined;
        const alg = jws?.header.alg;
        if (jws && typeof alg === "string" && HMAC_HASH[alg] !== undefined) payload = verifyHmacJwt(jws, alg, secretBytes!, algorithms, hmacRules);
        else ({ payload } = await jwtVerify(token, getKey, {
          algorithms,
          issuer: options.issuer,
          audience: options.audience,
          clockTolerance: options.clockToleranceSec ?? 5,
          requiredClaims: requireExp ? ["exp"] : [],
        }));
      } catch (err) {
        throw toAuthError(err);
      }
      const sub = payload.sub;
      if (typeof sub !== "string" || sub.length === 0 || sub.length > 256) {
        throw new AuthError(ErrorCode.AUTH_INVALID, 'token claim "sub" missing or invalid');
      }
      const tenant = payload[tenantClaim] ?? options.defaultTenant;
      if (!isValidTenant(tenant)) {
        throw new AuthError(ErrorCode.AUTH_INVALID, `token claim "${tenantClaim}" missing or not a valid tenant id`);
      }
      const roleValue = payload[roleClaim];
      const role = typeof roleValue === "string" ? roleValue : undefined;
      const caps = parseCaps(payload[capsClaim]);
      return {
        sub,
        tenant,
        role,
        admin: role === "admin",
        caps,
        expiresAt: typeof payload.exp === "number" ? payload.exp * 1000 : undefined,
        claims: payload,
      };
    },
  };
}

/**
 * Whether `auth` may perform `action` on `resource` (a room, or a store namespace for "store"): admins always;
 * without a caps claim, everything of the tenant; with one, only what a pattern of that action matches.
 */
export function can(auth: AuthContext, action: Capability, resource: string): boolean {
  if (auth.admin || auth.caps === undefined) return true;
  const patterns = auth.caps[action];
  if (!patterns) return false;
  for (let i = 0; i < patterns.length; i++) if (roomMatches(patterns[i]!, resource)) return true;
  return false;
}

/** The offered subprotocols of an upgrade request, in order. */
export function offeredProtocols(req: IncomingMessage): string[] {
  const header = req.headers["sec-websocket-protocol"];
  if (typeof header !== "string" || header.length === 0) return [];
  return header
    .split(",")
    .map((p) => p.trim())
    .filter((p) => p.length > 0);
}

/** The token of an `Authorization: Bearer` header: undefined without the header, "" when it is not a bearer token. */
export function bearerToken(req: IncomingMessage): string | undefined {
  const header = req.headers.authorization;
  if (typeof header !== "string") return undefined;
  return /^Bearer[ ]+(\S+)\s*$/i.exec(header)?.[1] ?? "";
}

/** The token of an upgrade request: `Authorization: Bearer`, then `?token=`, then a `bearer.<token>` subprotocol. */
export function extractToken(req: IncomingMessage, query: string): string | undefined {
  const bearer = bearerToken(req);
  if (bearer !== undefined) return bearer;
  const fromQuery = queryParam(query, "token");
  if (fromQuery !== null) return fromQuery;
  for (const p of offeredProtocols(req)) {
    if (p.startsWith(SUBPROTOCOL_BEARER_PREFIX)) return p.slice(SUBPROTOCOL_BEARER_PREFIX.length);
  }
  return undefined;
}

/** What `signToken` signs. */
export interface SignTokenOptions {
  /** The HMAC secret the gateway verifies with. */
  secret: string | Uint8Array;
  /** The `sub` claim. */
  sub: string;
  /** The tenant id, written to the `tenantClaim` claim; must be a valid tenant id (ARQ_TENANT_INVALID otherwise). */
  tenant: string;
  /** Written as the `role` claim (always under that name). */
  role?: string;
  /** Written as the `caps` claim (always under that name). */
  caps?: Capabilities;
  /** Lifetime: seconds, or a span like "30m", "1h", "7d". @default "1h" */
  ttl?: string | number;
  /** @default "HS256" */
  algorithm?: "HS256" | "HS384" | "HS512";
  /** @default "tenant" */
  tenantClaim?: string;
  /** The `iss` claim, when set. */
  issuer?: string;
  /** The `aud` claim, when set. */
  audience?: string;
  /** Extra claims; the tenant claim, `sub`, `role`, `caps`, `iat`, `exp`, `iss` and `aud` set here win over them. */
  claims?: JWTPayload;
}

const TTL_RE = /^(\d+)\s*(s|m|h|d)?$/;

/** Parses a token lifetime ("90", "30m", "1h", "7d") into seconds; undefined when it is not one. */
export function parseTtl(ttl: string | number): number | undefined {
  if (typeof ttl === "number") return Number.isFinite(ttl) && ttl > 0 ? Math.floor(ttl) : undefined;
  const m = TTL_RE.exec(ttl.trim());
  if (!m) return undefined;
  const n = Number(m[1]);
  const unit = { s: 1, m: 60, h: 3600, d: 86400 }[(m[2] ?? "s") as "s" | "m" | "h" | "d"];
  return n > 0 ? n * unit : undefined;
}

/** Signs an HMAC token the gateway accepts (what `arqon token` prints). */
export async function signToken(options: SignTokenOptions): Promise<string> {
  const ttl = parseTtl(options.ttl ?? "1h");
  if (ttl === undefined) throw new ArqonError(ErrorCode.VALIDATION_ERROR, `ttl "${options.ttl}" is not a duration like 30m, 1h or 7d`);
  if (!isValidTenant(options.tenant)) throw new ArqonError(ErrorCode.TENANT_INVALID, "tenant must be 1-64 characters of letters, digits, _ and -");
  const payload: JWTPayload = { ...options.claims, [options.tenantClaim ?? "tenant"]: options.tenant };
  if (options.role) payload.role = options.role;
  if (options.caps) payload.caps = options.caps;
  const now = Math.floor(Date.now() / 1000);
  let jwt = new SignJWT(payload)
    .setProtectedHeader({ alg: options.algorithm ?? "HS256", typ: "JWT" })
    .setSubject(options.sub)
    .setIssuedAt(now)
    .setExpirationTime(now + ttl);
  if (options.issuer) jwt = jwt.setIssuer(options.issuer);
  if (options.audience) jwt = jwt.setAudience(options.audience);
  const key = typeof options.secret === "string" ? Buffer.from(options.secret, "utf8") : options.secret;
  return jwt.sign(key);
}
