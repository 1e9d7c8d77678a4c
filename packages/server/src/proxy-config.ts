import { ArqonError, ErrorCode } from "@arqon/core";
import type { OutboundGuard } from "./outbound.js";

/** The proxy hooks, in the order a connection meets them. */
export const PROXY_HOOKS = ["connect", "subscribe", "publish", "refresh", "rpc"] as const;

/** One proxy hook: where the gateway asks the application backend (docs/gateway.md, "Proxy hooks"). */
export type ProxyHookName = (typeof PROXY_HOOKS)[number];

/** One hook's endpoint and how the gateway treats it. */
export interface ProxyHookOptions {
  /** Where the event is POSTed as JSON; it goes through the outbound guard (`https:` unless `outbound.allowHttp`). */
  url: string;
  /** Time one call may take; a slower answer is a failure. @default 1000 */
  timeoutMs?: number;
  /** Calls of this hook in flight at once (per node); a call beyond fails at once ("overloaded"). @default 64 */
  maxConcurrency?: number;
  /**
   * What a failure (timeout, connection error, non-2xx, malformed answer, overload, refused URL) means: false denies
   * with ARQ_PROXY_UNAVAILABLE, true lets the action through unchanged. Ignored by `refresh` (a failed refresh never
   * extends; it is retried until the expiry). @default false
   */
  failOpen?: boolean;
}

/** A hook with every default filled in. */
export type ResolvedHookOptions = Required<ProxyHookOptions>;

/** Proxy hooks of the whole server (`ArqonServerOptions.proxy`, `arqon serve --proxy-*`). */
export interface ProxyOptions {
  /** At the upgrade, after the token was verified, or instead of a token (session cookies). */
  connect?: string | ProxyHookOptions;
  /** On every `subscribe`, after the capability check. */
  subscribe?: string | ProxyHookOptions;
  /** On every client `publish`, after the rate limits and before CASIL. */
  publish?: string | ProxyHookOptions;
  /** Ahead of a connection's expiry (`refreshAheadMs` before it). */
  refresh?: string | ProxyHookOptions;
  /** On every `rpc` frame. */
  rpc?: string | ProxyHookOptions;
  /**
   * The Standard Webhooks signing secret (`whsec_` and base64 of at least 16 bytes) every call is signed with
   * (`webhook-id`, `webhook-timestamp`, `webhook-signature`). Required as soon as a hook is configured, here or for a
   * tenant that has no secret of its own.
   */
  secret?: string;
  /** Request headers of the upgrade copied into the connect event (names, case-insensitive). @default [] */
  forwardHeaders?: string[];
  /** Cookies of the upgrade copied into the connect event (names, exact). @default [] */
  forwardCookies?: string[];
  /** How long before a connection's expiry the refresh hook is called. @default 30000 */
  refreshAheadMs?: number;
}

/**
 * A tenant's own hooks, set by the operator only (`PATCH /api/v1/tenants/:t {"proxy": {...}}`): each one given
 * replaces the server's hook of that name for the tenant's connections; `secret` replaces the signing secret.
 */
export type TenantProxy = Partial<Record<ProxyHookName, ProxyHookOptions>> & {
  /** The signing secret (`whsec_…`) of the tenant's own hooks; the server's when absent (the server's hooks keep the server's). */
  secret?: string;
};

const DEFAULTS = { timeoutMs: 1000, maxConcurrency: 64, failOpen: false };

function invalid(message: string): ArqonError {
  return new ArqonError(ErrorCode.VALIDATION_ERROR, message);
}

/** Checks a signing secret: `whsec_` and the base64 of at least 16 bytes. */
export function checkProxySecret(secret: unknown, where: string): string {
  if (typeof secret !== "string" || !/^whsec_[A-Za-z0-9+/]+={0,2}$/.test(secret) || Buffer.from(secret.slice(6), "base64").length < 16) {
    throw invalid(`${where} must be a Standard Webhooks secret: "whsec_" and the base64 of at least 16 bytes`);
  }
  return secret;
}

/** One hook's options, checked, with defaults filled in (the URL's form is checked by the guard). */
export function resolveHook(value: unknown, where: string, guard: OutboundGuard): ResolvedHookOptions {
  const options: ProxyHookOptions = typeof value === "string" ? { url: value } : (value as ProxyHookOptions);
  if (typeof options !== "object" || options === null || Array.isArray(options)) throw invalid(`${where} must be a URL or {url, timeoutMs?, maxConcurrency?, failOpen?}`);
  for (const field of Object.keys(options)) {
    if (!["url", "timeoutMs", "maxConcurrency", "failOpen"].includes(field)) throw invalid(`${where}: unknown field "${field}"`);
  }
  if (typeof options.url !== "string") throw invalid(`${where}.url must be a URL`);
  // Refused at configuration already when its form (scheme, credentials, a literal address) cannot pass.
  guard.parse(options.url);
  const timeoutMs = options.timeoutMs ?? DEFAULTS.timeoutMs;
  if (!Number.isSafeInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > 60_000) throw invalid(`${where}.timeoutMs must be a whole number of ms from 1 to 60000`);
  const maxConcurrency = options.maxConcurrency ?? DEFAULTS.maxConcurrency;
  if (!Number.isSafeInteger(maxConcurrency) || maxConcurrency < 1 || maxConcurrency > 100_000) throw invalid(`${where}.maxConcurrency must be a whole number from 1 to 100000`);
  const failOpen = options.failOpen ?? DEFAULTS.failOpen;
  if (typeof failOpen !== "boolean") throw invalid(`${where}.failOpen must be true or false`);
  return { url: options.url, timeoutMs, maxConcurrency, failOpen };
}

/**
 * Checks a tenant's `proxy` patch and merges it into the record's: a hook given replaces that hook, a hook (or the
 * secret) given as null removes it, `proxy: null` removes them all. Resolves undefined when nothing is left.
 */
export function mergeTenantProxy(current: TenantProxy | undefined, patch: unknown, guard: OutboundGuard, serverHasSecret: boolean): TenantProxy | undefined {
  if (patch === null) return undefined;
  if (typeof patch !== "object" || Array.isArray(patch)) throw invalid("proxy must be an object of hooks");
  const next: TenantProxy = { ...current };
  for (const [field, value] of Object.entries(patch as Record<string, unknown>)) {
    if (field === "secret") {
      if (value === null) delete next.secret;
      else next.secret = checkProxySecret(value, "proxy.secret");
      continue;
    }
    if (!(PROXY_HOOKS as readonly string[]).includes(field)) throw invalid(`proxy: unknown hook "${field}" (${PROXY_HOOKS.join(", ")}, secret)`);
    const name = field as ProxyHookName;
    if (value === null) delete next[name];
    else next[name] = resolveHook(value, `proxy.${name}`, guard);
  }
  const hooks = PROXY_HOOKS.filter((h) => next[h] !== undefined);
  if (hooks.length > 0 && next.secret === undefined && !serverHasSecret) {
    throw invalid("proxy hooks need a signing secret: give proxy.secret, or configure the server's (--proxy-secret)");
  }
  return hooks.length === 0 && next.secret === undefined ? undefined : next;
}
