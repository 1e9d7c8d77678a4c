import { createHmac, randomBytes } from "node:crypto";
import type { IncomingMessage } from "node:http";
import type { Logger } from "pino";
import { ArqonError, CloseCode, ErrorCode, fromBase64, isValidTenant, jsonBytes, parseJsonBytes, toBase64, type Frame } from "@arqon/core";
import { parseCaps, type AuthContext } from "./auth.js";
import type { Connection } from "./connection.js";
import type { HandlerContext } from "./context.js";
import type { ServerMetrics } from "./metrics.js";
import { OutboundError, type OutboundGuard } from "./outbound.js";
import { PROXY_HOOKS, checkProxySecret, resolveHook, type ProxyHookName, type ProxyOptions, type ResolvedHookOptions, type TenantProxy } from "./proxy-config.js";
import type { PublishInput } from "./rooms.js";

/** Why a hook call did not answer usably, as `arqon_proxy_failures_total` labels it. */
export type ProxyFailure = "forbidden" | "timeout" | "connect" | "http_status" | "redirect" | "bad_answer" | "overloaded";

/** One configured hook: its endpoint, options, signing secret and the calls it has in flight on this node. */
export class ProxyHook {
  /** Calls in flight. */
  active = 0;
  constructor(
    /** Which hook it is. */
    readonly name: ProxyHookName,
    /** Its options, defaults filled in. */
    readonly options: ResolvedHookOptions,
    /** The Standard Webhooks key bytes its calls are signed with. */
    readonly key: Buffer,
  ) {}
}

/** The hooks in force for one tenant (the tenant's own over the server's); absent names have no hook. */
export type ResolvedHooks = Partial<Record<ProxyHookName, ProxyHook>>;

/** What the connect hook is told about the upgrade besides the token. */
export interface ConnectInput {
  req: IncomingMessage;
  /** The verified token, when the upgrade carried one. */
  auth?: AuthContext;
  /** The tenant the upgrade names: the token's, else `?tenant=`. */
  tenant?: string;
  ip: string;
  codec: string;
  protocol: string;
  /** Tenant of an answer that names none when the upgrade named none either (`auth.defaultTenant`). */
  defaultTenant?: string;
}

/** A refusal of the upgrade: the HTTP status, the code and the message of the error body. */
export interface UpgradeRefusal {
  status: number;
  code: string;
  message: string;
}

const REASON_RE = /^[A-Za-z0-9_.:-]{1,64}$/;
const PROXY_VERSION = "1";

function keyOf(secret: string): Buffer {
  return Buffer.from(secret.slice("whsec_".length), "base64");
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** A call that failed, with its class (the message is the operator's; clients see ARQ_PROXY_UNAVAILABLE). */
class HookFailure extends Error {
  constructor(
    readonly failure: ProxyFailure,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** The JSON value of payload bytes, as a hook event carries it (binary: base64 text). */
function payloadValue(payload: Uint8Array, binary: boolean): unknown {
  return binary ? toBase64(payload) : parseJsonBytes(payload);
}

/**
 * The client side of the proxy hooks: builds each event, POSTs it through the server's one outbound guard, signed
 * with Standard Webhooks headers, within the hook's timeout and concurrency cap, and turns the answer into what the
 * gateway does (allow, deny with ARQ_PROXY_DENIED, modify), or, when the call fails, into the hook's failure mode
 * (fail closed: ARQ_PROXY_UNAVAILABLE; fail open: allow unchanged). Every call is counted in the proxy metrics.
 */
export class ProxyHooks {
  private readonly server: ResolvedHooks = {};
  private readonly serverKey: Buffer | undefined;
  /** Tenant hooks by tenant, rebuilt when the tenant's record changes (kept while the settings stay the same). */
  private readonly tenantHooks = new Map<string, { settings: string; hooks: ResolvedHooks | undefined }>();
  private readonly forwardHeaders: string[];
  private readonly forwardCookies: Set<string>;
  private readonly refreshAheadMs: number;
  private readonly refreshing = new WeakMap<Connection, number>();

  constructor(
    options: ProxyOptions,
    private readonly guard: OutboundGuard,
    private readonly metrics: ServerMetrics,
    private readonly logger: Logger,
  ) {
    if (options.secret !== undefined) this.serverKey = keyOf(checkProxySecret(options.secret, "proxy.secret"));
    for (const name of PROXY_HOOKS) {
      const value = options[name];
      if (value === undefined) continue;
      if (!this.serverKey) throw new ArqonError(ErrorCode.VALIDATION_ERROR, `proxy.${name} needs proxy.secret (the signing secret of every hook call)`);
      this.server[name] = new ProxyHook(name, resolveHook(value, `proxy.${name}`, guard), this.serverKey);
    }
    this.forwardHeaders = (options.forwardHeaders ?? []).map((h) => h.toLowerCase());
    this.forwardCookies = new Set(options.forwardCookies ?? []);
    this.refreshAheadMs = options.refreshAheadMs ?? 30_000;
  }

  /** Whether the server itself has a signing secret (a tenant's hooks may then do without one). */
  get hasSecret(): boolean {
    return this.serverKey !== undefined;
  }

  /** The guard the hooks' URLs are checked with. */
  get outbound(): OutboundGuard {
    return this.guard;
  }

  /**
   * The hooks in force for a tenant, its record's `proxy` over the server's; undefined when it has none at all (the
   * publish path then costs one field check).
   */
  resolve(tenant: string, own: TenantProxy | undefined): ResolvedHooks | undefined {
    if (own === undefined) return Object.keys(this.server).length > 0 ? this.server : undefined;
    const settings = JSON.stringify(own);
    const cached = this.tenantHooks.get(tenant);
    if (cached?.settings === settings) return cached.hooks;
    const key = own.secret !== undefined ? keyOf(own.secret) : this.serverKey;
    const hooks: ResolvedHooks = { ...this.server };
    for (const name of PROXY_HOOKS) {
      const options = own[name];
      if (options !== undefined && key !== undefined) hooks[name] = new ProxyHook(name, { timeoutMs: 1000, maxConcurrency: 64, failOpen: false, ...options }, key);
    }
    const out = Object.keys(hooks).length > 0 ? hooks : undefined;
    this.tenantHooks.set(tenant, { settings, hooks: out });
    return out;
  }

  /** The server's own hooks (an upgrade that names no tenant meets these); undefined when it has none. */
  get serverHooks(): ResolvedHooks | undefined {
    return Object.keys(this.server).length > 0 ? this.server : undefined;
  }

  /** Forgets a tenant's hooks (its record is gone). */
  forget(tenant: string): void {
    this.tenantHooks.delete(tenant);
  }

  /**
   * Calls a hook and resolves with its answer when it allows (the object it answered, `{}` for an empty body, or `{}`
   * after a failure of a fail-open hook). Rejects with ARQ_PROXY_DENIED (detail.status: 401 or 403) when it denies,
   * and with ARQ_PROXY_UNAVAILABLE when a fail-closed hook failed.
   */
  async call(hook: ProxyHook, event: Record<string, unknown>): Promise<Record<string, unknown>> {
    const name = hook.name;
    const started = performance.now();
    let answer: Record<string, unknown>;
    try {
      answer = await this.send(hook, event);
    } catch (err) {
      const failure = err instanceof HookFailure ? err.failure : "connect";
      this.metrics.proxyCalls.inc({ hook: name, result: "failure" });
      this.metrics.proxyFailures.inc({ hook: name, reason: failure });
      this.metrics.proxySeconds.observe({ hook: name }, (performance.now() - started) / 1000);
      this.logger.warn({ err, hook: name, failure, failOpen: hook.options.failOpen }, "proxy hook failed");
      if (hook.options.failOpen && name !== "refresh") return {};
      throw new ArqonError(ErrorCode.PROXY_UNAVAILABLE, `the ${name} hook is unavailable`, { cause: err, detail: { failure } });
    }
    this.metrics.proxySeconds.observe({ hook: name }, (performance.now() - started) / 1000);
    const deny = answer.deny;
    if (deny !== undefined && deny !== false && deny !== null) {
      this.metrics.proxyCalls.inc({ hook: name, result: "deny" });
      const d = isObject(deny) ? deny : {};
      const reason = typeof d.reason === "string" && REASON_RE.test(d.reason) ? d.reason : undefined;
      const status = d.status === 401 ? 401 : 403;
      throw new ArqonError(ErrorCode.PROXY_DENIED, reason ? `denied by the application backend: ${reason}` : "denied by the application backend", {
        detail: { status, ...(reason ? { reason } : {}) },
      });
    }
    this.metrics.proxyCalls.inc({ hook: name, result: "allow" });
    return answer;
  }

  private async send(hook: ProxyHook, event: Record<string, unknown>): Promise<Record<string, unknown>> {
    if (hook.active >= hook.options.maxConcurrency) throw new HookFailure("overloaded", `${hook.options.maxConcurrency} calls already in flight`);
    hook.active++;
    try {
      const body = JSON.stringify({ hook: hook.name, ...event });
      const id = `prx_${randomBytes(12).toString("base64url")}`;
      const timestamp = Math.floor(Date.now() / 1000);
      const signature = `v1,${createHmac("sha256", hook.key).update(`${id}.${timestamp}.${body}`).digest("base64")}`;
      let res;
      try {
        res = await this.guard.request(hook.options.url, {
          method: "POST",
          timeoutMs: hook.options.timeoutMs,
          body,
          headers: {
            "content-type": "application/json",
            "user-agent": `arqon-proxy/${PROXY_VERSION}`,
            "x-arqon-hook": hook.name,
            "webhook-id": id,
            "webhook-timestamp": String(timestamp),
            "webhook-signature": signature,
          },
        });
      } catch (err) {
        const failure = err instanceof OutboundError ? (err.failure === "unresolvable" ? "forbidden" : err.failure) : "connect";
        throw new HookFailure(failure, err instanceof Error ? err.message : "request failed", { cause: err });
      }
      if (res.status >= 300 && res.status < 400) throw new HookFailure("redirect", `answered ${res.status} (redirects are not followed)`);
      if (res.status < 200 || res.status >= 300) throw new HookFailure("http_status", `answered ${res.status}`);
      if (res.body.length === 0) return {};
      let parsed: unknown;
      try {
        parsed = JSON.parse(res.body.toString("utf8"));
      } catch (err) {
        throw new HookFailure("bad_answer", "the answer is not JSON", { cause: err });
      }
      if (!isObject(parsed)) throw new HookFailure("bad_answer", "the answer is not a JSON object");
      return parsed;
    } finally {
      hook.active--;
    }
  }

  /** A call whose answer turned out malformed: counted and treated like any failure of the hook. */
  private badAnswer(hook: ProxyHook, message: string): Record<string, unknown> {
    this.metrics.proxyFailures.inc({ hook: hook.name, reason: "bad_answer" });
    this.logger.warn({ hook: hook.name, failure: "bad_answer" }, `proxy hook answer refused: ${message}`);
    if (hook.options.failOpen && hook.name !== "refresh" && hook.name !== "connect") return {};
    throw new ArqonError(ErrorCode.PROXY_UNAVAILABLE, `the ${hook.name} hook gave an unusable answer`, { detail: { failure: "bad_answer" } });
  }

  // ---- connect ---------------------------------------------------------------------------------------------------

  /** The connect hook in force for an upgrade of `tenant` (the server's when the tenant is unknown). */
  connectHook(hooks: ResolvedHooks | undefined): ProxyHook | undefined {
    return hooks?.connect;
  }

  /**
   * Asks the connect hook about an upgrade and resolves with who the connection is: the token's identity, changed by
   * what the answer says (`user`, `caps`, `info`, `expiresAt`), or, without a token, the identity the answer gives
   * (`user` required; `tenant` unless the upgrade named one). A fail-open failure admits a token's identity
   * unchanged; an upgrade without a token is never admitted by a failure.
   */
  async connect(hook: ProxyHook, input: ConnectInput): Promise<AuthContext> {
    const { req, auth } = input;
    const headers: Record<string, string> = {};
    for (const name of this.forwardHeaders) {
      const value = req.headers[name];
      if (typeof value === "string") headers[name] = value;
      else if (Array.isArray(value)) headers[name] = value.join(", ");
    }
    const cookies: Record<string, string> = {};
    if (this.forwardCookies.size > 0 && typeof req.headers.cookie === "string") {
      for (const part of req.headers.cookie.split(";")) {
        const eq = part.indexOf("=");
        if (eq < 0) continue;
        const name = part.slice(0, eq).trim();
        if (this.forwardCookies.has(name)) cookies[name] = part.slice(eq + 1).trim();
      }
    }
    const event: Record<string, unknown> = {
      client: { address: input.ip, userAgent: req.headers["user-agent"] ?? "", protocol: input.protocol, codec: input.codec, transport: "websocket" },
      headers,
      cookies,
    };
    if (input.tenant !== undefined) event.tenant = input.tenant;
    if (auth) {
      event.user = auth.sub;
      event.claims = auth.claims;
    }
    const answer = await this.call(hook, event);
    if (Object.keys(answer).length === 0 && auth) return auth;
    return this.applyConnect(hook, answer, input);
  }

  private applyConnect(hook: ProxyHook, answer: Record<string, unknown>, input: ConnectInput): AuthContext {
    const refuse = (message: string): never => {
      this.badAnswer(hook, message);
      // badAnswer throws for connect; this line only satisfies the type checker.
      throw new ArqonError(ErrorCode.PROXY_UNAVAILABLE, message);
    };
    const base = input.auth;
    const user = answer.user ?? base?.sub;
    if (typeof user !== "string" || user.length === 0 || user.length > 256) return refuse('"user" must be a string of 1-256 characters');
    let tenant = base?.tenant ?? input.tenant;
    if (answer.tenant !== undefined) {
      if (tenant !== undefined && answer.tenant !== tenant) return refuse(`"tenant" may not change the upgrade's tenant`);
      tenant = answer.tenant as string;
    }
    tenant ??= input.defaultTenant;
    if (!isValidTenant(tenant)) return refuse('"tenant" missing or not a valid tenant id');
    let caps = base?.caps;
    if (answer.caps !== undefined) {
      try {
        caps = parseCaps(answer.caps);
      } catch {
        return refuse('"caps" must be an object of room pattern lists');
      }
    }
    let expiresAt = base?.expiresAt;
    if (answer.expiresAt !== undefined) {
      if (typeof answer.expiresAt !== "number" || !Number.isSafeInteger(answer.expiresAt) || answer.expiresAt <= Date.now()) {
        return refuse('"expiresAt" must be a time in the future, epoch ms');
      }
      expiresAt = answer.expiresAt;
    }
    const claims = base?.claims ?? { sub: user, tenant };
    const out: AuthContext = { sub: user, tenant, admin: base?.admin ?? false, claims };
    if (base?.role !== undefined) out.role = base.role;
    if (caps !== undefined) out.caps = caps;
    if (expiresAt !== undefined) out.expiresAt = expiresAt;
    if (answer.info !== undefined) out.info = jsonBytes(answer.info);
    else if (base?.info !== undefined) out.info = base.info;
    return out;
  }

  /** The HTTP answer to an upgrade the connect hook refused or could not answer. */
  refusalOf(err: unknown): UpgradeRefusal {
    if (err instanceof ArqonError && err.code === ErrorCode.PROXY_DENIED) {
      return { status: (err.detail?.status as number | undefined) ?? 403, code: err.code, message: err.message };
    }
    if (err instanceof ArqonError && err.code === ErrorCode.PROXY_UNAVAILABLE) return { status: 503, code: err.code, message: err.message };
    this.logger.error({ err }, "connect hook failed");
    return { status: 500, code: ErrorCode.INTERNAL, message: "internal error" };
  }

  // ---- subscribe, publish, rpc -----------------------------------------------------------------------------------

  /** Asks the subscribe hook; resolves with the presence info to use (the answer's `info`, else `info`). */
  async subscribe(hook: ProxyHook, conn: Connection, room: string, info: Uint8Array | undefined): Promise<Uint8Array | undefined> {
    const event: Record<string, unknown> = { tenant: conn.tenant, user: conn.auth.sub, client: { id: conn.id, address: conn.ip }, room };
    if (info !== undefined) event.info = parseJsonBytes(info);
    const answer = await this.call(hook, event);
    return answer.info !== undefined ? jsonBytes(answer.info) : info;
  }

  /**
   * Asks the publish hook (before CASIL, so CASIL inspects what the hook answered); resolves with the publish to
   * make: the answer's `payload` (a JSON value, or base64 text with `payloadFormat: "binary"`) and `headers` replace
   * the client's.
   */
  async publish(hook: ProxyHook, conn: Connection, input: PublishInput): Promise<PublishInput> {
    const binary = input.payloadFormat === "binary";
    const event = {
      tenant: conn.tenant,
      user: conn.auth.sub,
      client: { id: conn.id, address: conn.ip },
      room: input.room,
      payload: payloadValue(input.payload, binary),
      payloadFormat: binary ? "binary" : "json",
      headers: input.headers ?? {},
    };
    const answer = await this.call(hook, event);
    if (answer.payload === undefined && answer.headers === undefined) return input;
    const out: PublishInput = { ...input };
    if (answer.payload !== undefined) {
      if (answer.payloadFormat === "binary") {
        const bytes = typeof answer.payload === "string" ? fromBase64(answer.payload) : undefined;
        if (!bytes) return (this.badAnswer(hook, '"payload" with payloadFormat "binary" must be base64 text'), input);
        out.payload = bytes;
        out.payloadFormat = "binary";
      } else {
        out.payload = jsonBytes(answer.payload);
        delete out.payloadFormat;
      }
    }
    if (answer.headers !== undefined) {
      const headers = answer.headers;
      if (!isObject(headers) || Object.values(headers).some((v) => typeof v !== "string") || Object.keys(headers).length > 64) {
        return (this.badAnswer(hook, '"headers" must be an object of at most 64 strings'), input);
      }
      out.headers = Object.fromEntries(Object.entries(headers as Record<string, string>).map(([k, v]) => [k.toLowerCase(), v]));
    }
    return out;
  }

  /** Asks the rpc hook; resolves with the answer's `data` (null when it gave none). */
  async rpc(hook: ProxyHook, conn: Connection, method: string, data: Uint8Array | undefined): Promise<Uint8Array> {
    const event: Record<string, unknown> = { tenant: conn.tenant, user: conn.auth.sub, client: { id: conn.id, address: conn.ip }, method };
    event.data = data === undefined ? null : parseJsonBytes(data);
    const answer = await this.call(hook, event);
    return jsonBytes(answer.data ?? null);
  }

  // ---- refresh ---------------------------------------------------------------------------------------------------

  /**
   * Called by the keepalive sweep for a connection with an expiry: within `refreshAheadMs` of it, asks the refresh
   * hook (one call at a time per connection, retried every second after a failure). An answer with a later
   * `expiresAt` extends the connection (told with an `auth_ok` frame); a denial closes it with 4500; a failure leaves
   * the expiry as it was, so the connection closes with 4004 when it comes.
   */
  maybeRefresh(ctx: HandlerContext, hook: ProxyHook | undefined, conn: Connection, expiresAt: number, now: number): void {
    if (hook === undefined || now < expiresAt - this.refreshAheadMs) return;
    const next = this.refreshing.get(conn);
    if (next !== undefined && (next === Number.POSITIVE_INFINITY || now < next)) return;
    this.refreshing.set(conn, Number.POSITIVE_INFINITY);
    const event = { tenant: conn.tenant, user: conn.auth.sub, client: { id: conn.id, address: conn.ip }, expiresAt, claims: conn.auth.claims };
    this.call(hook, event).then(
      (answer) => {
        const extended = answer.expiresAt;
        if (typeof extended !== "number" || !Number.isSafeInteger(extended) || extended <= Date.now()) {
          this.refreshing.set(conn, Date.now() + 1000);
          this.metrics.proxyFailures.inc({ hook: "refresh", reason: "bad_answer" });
          this.logger.warn({ clientId: conn.id }, 'refresh hook answered no future "expiresAt"; retrying');
          return;
        }
        this.refreshing.delete(conn);
        if (conn.closing) return;
        conn.auth = { ...conn.auth, expiresAt: extended };
        conn.send({ type: "auth_ok", expiresAt: extended });
      },
      (err: unknown) => {
        if (err instanceof ArqonError && err.code === ErrorCode.PROXY_DENIED) {
          this.refreshing.delete(conn);
          ctx.closeConnection(conn, CloseCode.AUTH_INVALID, "session refused by the application backend", "revoked");
          return;
        }
        this.refreshing.set(conn, Date.now() + 1000);
      },
    );
  }
}

/** `rpc`: asks the tenant's rpc hook and answers `rpc_result` with its `data`; ARQ_FEATURE_DISABLED without a hook. */
export async function handleRpc(ctx: HandlerContext, conn: Connection, frame: Frame): Promise<void> {
  const hook = ctx.tenants.runtime(conn.tenant).hooks?.rpc;
  if (hook === undefined) throw new ArqonError(ErrorCode.FRAME_FEATURE_DISABLED, "rpc is not enabled on this server (no rpc proxy hook)");
  const data = await ctx.proxy.rpc(hook, conn, frame.method!, frame.data);
  const reply: Frame = { type: "rpc_result", data };
  if (frame.requestId) reply.requestId = frame.requestId;
  conn.send(reply);
}
