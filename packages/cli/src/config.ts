import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import type { AuthOptions, FallbackOptions, LimitOptions, OutboundOptions, PresenceOptions, ProxyOptions, PusherOptions, TenancyMode, TenantLimits } from "@arqon/server";

/** A usage or configuration problem: printed without a stack, exit code 2. */
export class CliError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "CliError";
  }
}

/** What `arqon.config.json` may hold; every key is optional and flags and ARQON_* variables override it. */
export interface ConfigFile {
  port?: number;
  host?: string;
  path?: string;
  dev?: boolean;
  dataDir?: string;
  logLevel?: string;
  logFormat?: "pretty" | "json";
  auth?: Omit<AuthOptions, "publicKeys" | "dev"> & { publicKeys?: string[] };
  limits?: LimitOptions;
  tenantLimits?: Record<string, TenantLimits>;
  /** Limits of every tenant unless its record or `tenantLimits` says otherwise. */
  tenantDefaults?: TenantLimits;
  /** Operator keys (prefer ARQON_OPERATOR_KEY: a config file is easier to leak than the environment). */
  operatorKeys?: string[];
  /** Tokens that may read /status and /metrics only. */
  scrapeTokens?: string[];
  /** "open" (default) or "registered". */
  tenancy?: TenancyMode;
  /** Signs node-to-node control messages (at least 32 characters, the same on every node). */
  clusterKey?: string;
  /** What server-side requests may reach: `{ "allow": ["10.0.0.0/8"], "allowHttp": false, "timeoutMs": 5000 }`. */
  outbound?: Pick<OutboundOptions, "allow" | "allowHttp" | "timeoutMs" | "maxResponseBytes">;
  /** Proxy hooks to the application backend: `{ "connect": "https://app/hooks/connect", "secret": "whsec_…" }` (docs/gateway.md). */
  proxy?: ProxyOptions;
  presence?: PresenceOptions;
  /**
   * The Pusher Channels protocol mode: `{ "apps": [{ "tenant": "acme", "appId": "1001", "key": "…", "secret": "…" }] }`
   * (docs/pusher.md). The secrets sign channel authorizations and HTTP API calls: keep this file private.
   */
  pusher?: PusherOptions;
  allowedOrigins?: string[];
  /**
   * The SSE and HTTP-streaming fallback transports (docs/protocol.md): on by default; `false` turns them off, or
   * `{ "heartbeatMs": 15000, "ticketTtlMs": 60000, "retryMs": 1000 }` tunes them.
   */
  fallback?: boolean | FallbackOptions;
  perMessageDeflate?: boolean | { threshold?: number };
  /** The web console at /console (docs/console.md): on by default in dev mode, off otherwise. */
  console?: boolean;
  /** The server API's per-credential rate limit: `{ "apiRateLimit": { "perSecond": 200, "burst": 400 } }`. */
  http?: { apiRateLimit?: { perSecond?: number; burst?: number } };
  /** NATS server URL(s), comma-separated: run as a cluster node (bus, history, presence, state, kv on NATS). */
  nats?: string;
  /** JetStream replicas of the streams and buckets this node creates (3 on a 3-node NATS cluster). @default 1 */
  natsReplicas?: number;
  /** Worker processes sharing the port (needs `nats`). @default 1 */
  workers?: number;
  /** "embedded" (LMDB under <dataDir>/data, the default) or "memory". */
  storage?: "embedded" | "memory";
  /** When an acknowledged write is durable: "commit" (survives a process kill, default) or "flush" (fsync). */
  durability?: "flush" | "commit";
  /** Per-room history retention, first matching pattern wins: `[{ "pattern": "ticker:*", "maxMessages": 100 }]`. */
  retention?: Array<{ pattern: string; maxMessages?: number; maxAgeMs?: number; maxBytes?: number }>;
}

export const DEFAULT_CONFIG_FILE = "arqon.config.json";

export function readConfigFile(file: string | undefined, cwd: string): { config: ConfigFile; file?: string } {
  const explicit = file !== undefined;
  const resolved = path.resolve(cwd, file ?? DEFAULT_CONFIG_FILE);
  if (!existsSync(resolved)) {
    if (explicit) throw new CliError(`config file ${resolved} does not exist`);
    return { config: {} };
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(resolved, "utf8"));
  } catch (err) {
    throw new CliError(`config file ${resolved} is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw new CliError(`config file ${resolved} must hold a JSON object`);
  return { config: parsed as ConfigFile, file: resolved };
}

export function parsePort(value: string | number, source: string): number {
  const n = typeof value === "number" ? value : Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new CliError(`${source}: port must be an integer 0-65535, got "${value}"`);
  return n;
}

/** Splits a comma-separated list (env variables, repeated flags). */
export function list(values: string | string[] | undefined): string[] | undefined {
  if (values === undefined) return undefined;
  const out = (Array.isArray(values) ? values : [values]).flatMap((v) => v.split(",")).map((v) => v.trim()).filter(Boolean);
  return out.length ? out : undefined;
}

/** A public key given as PEM text, or as a path to a PEM file (relative to `cwd`). */
export function readPublicKey(value: string, cwd: string): string {
  if (value.includes("-----BEGIN")) return value;
  const file = path.resolve(cwd, value);
  if (!existsSync(file)) throw new CliError(`public key file ${file} does not exist`);
  return readFileSync(file, "utf8");
}

/** Options shared by `serve` and `token`: where the key comes from. */
export const KEY_OPTIONS = {
  config: { type: "string", short: "c" },
  "jwt-secret": { type: "string" },
  "jwt-public-key": { type: "string", multiple: true },
  "jwks-url": { type: "string" },
  "jwt-alg": { type: "string", multiple: true },
  "jwt-issuer": { type: "string" },
  "jwt-audience": { type: "string" },
  "tenant-claim": { type: "string" },
  "data-dir": { type: "string" },
  dev: { type: "boolean" },
} as const;

export interface KeyFlags {
  config?: string;
  "jwt-secret"?: string;
  "jwt-public-key"?: string[];
  "jwks-url"?: string;
  "jwt-alg"?: string[];
  "jwt-issuer"?: string;
  "jwt-audience"?: string;
  "tenant-claim"?: string;
  "data-dir"?: string;
  dev?: boolean;
}

export interface ResolvedAuth {
  /** Auth options without the dev key (dev mode adds it). */
  auth: AuthOptions;
  /** No key configured, or --dev: use the local development key. */
  dev: boolean;
  dataDir: string;
  config: ConfigFile;
  configFile?: string;
}

function envFlag(value: string | undefined): boolean | undefined {
  if (value === undefined || value === "") return undefined;
  return value === "1" || value.toLowerCase() === "true" || value.toLowerCase() === "yes";
}

/** Key material and verification settings from flags, then ARQON_* variables, then the config file. */
export function resolveAuth(flags: KeyFlags, env: NodeJS.ProcessEnv, cwd: string): ResolvedAuth {
  const { config, file } = readConfigFile(flags.config ?? env.ARQON_CONFIG, cwd);
  const fileAuth = config.auth ?? {};
  const secret = flags["jwt-secret"] ?? env.ARQON_JWT_SECRET ?? (typeof fileAuth.secret === "string" ? fileAuth.secret : undefined);
  const publicKeys = list(flags["jwt-public-key"]) ?? list(env.ARQON_JWT_PUBLIC_KEY) ?? fileAuth.publicKeys;
  const jwksUrl = flags["jwks-url"] ?? env.ARQON_JWKS_URL ?? fileAuth.jwksUrl;
  const algorithms = list(flags["jwt-alg"]) ?? list(env.ARQON_JWT_ALGORITHMS) ?? fileAuth.algorithms;
  const issuer = flags["jwt-issuer"] ?? env.ARQON_JWT_ISSUER ?? fileAuth.issuer;
  const audience = flags["jwt-audience"] ?? env.ARQON_JWT_AUDIENCE ?? fileAuth.audience;
  const tenantClaim = flags["tenant-claim"] ?? env.ARQON_TENANT_CLAIM ?? fileAuth.tenantClaim;
  const dataDir = path.resolve(cwd, flags["data-dir"] ?? env.ARQON_DATA_DIR ?? config.dataDir ?? ".arqon");
  const devFlag = flags.dev ?? envFlag(env.ARQON_DEV) ?? config.dev ?? false;
  const hasKey = secret !== undefined || (publicKeys?.length ?? 0) > 0 || jwksUrl !== undefined;
  if (devFlag && hasKey) throw new CliError("--dev uses the local development key; drop --dev or the configured keys");
  if (secret !== undefined && secret.length < 32) throw new CliError("the JWT secret must be at least 32 characters");
  if (jwksUrl !== undefined) {
    try {
      new URL(jwksUrl);
    } catch {
      throw new CliError(`JWKS URL "${jwksUrl}" is not a URL`);
    }
  }
  const auth: AuthOptions = { ...fileAuth, publicKeys: undefined };
  if (secret !== undefined) auth.secret = secret;
  if (publicKeys?.length) auth.publicKeys = publicKeys.map((k) => readPublicKey(k, cwd));
  else delete auth.publicKeys;
  if (jwksUrl !== undefined) auth.jwksUrl = jwksUrl;
  if (algorithms) auth.algorithms = algorithms;
  if (issuer !== undefined) auth.issuer = issuer;
  if (audience !== undefined) auth.audience = audience;
  if (tenantClaim !== undefined) auth.tenantClaim = tenantClaim;
  return { auth, dev: devFlag || !hasKey, dataDir, config, configFile: file };
}
