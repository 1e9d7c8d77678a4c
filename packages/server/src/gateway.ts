import { randomFillSync } from "node:crypto";
import type { IncomingMessage } from "node:http";
import type { Socket } from "node:net";
import type { Duplex } from "node:stream";
import type { Logger } from "pino";
import { WebSocketServer, type WebSocket } from "ws";
import {
  ArqonError,
  CloseCode,
  ErrorCode,
  PROTOCOL_VERSION,
  PROTOCOL_VERSIONS,
  createDelta,
  isProtocolVersion,
  decodeFrame,
  isValidTenant,
  type InspectionInput,
  type Frame,
  type Inspector,
  type ProtocolVersion,
} from "@arqon/core";
import { AuthError, extractToken, offeredProtocols, type AuthContext, type Authenticator } from "./auth.js";
import { authorizeFrame } from "./authority.js";
import { SUBPROTOCOL_JSON, SUBPROTOCOL_PROTO, wireLimits, type ArqonServerOptions, type ResolvedLimits } from "./config.js";
import { Connection, type WireCodec } from "./connection.js";
import type { Backends, EndReason, HandlerContext } from "./context.js";
import { Fanout } from "./fanout.js";
import { parseTarget, queryParam, rejectUpgrade } from "./http-util.js";
import { inspectOrThrow } from "./inspect.js";
import { ConnectionCounter } from "./limits.js";
import type { ServerMetrics } from "./metrics.js";
import { handleCommand, type CommandDeps, type CommandRegistry } from "./commands.js";
import { PresenceManager } from "./presence.js";
import { handleRpc, type ProxyHooks } from "./proxy.js";
import type { ConnectionQuota, RoomRegistry } from "./quota.js";
import { registerHistoryCommands } from "./history-commands.js";
import { handleHistory, handlePublish, handleSubscribe, handleUnsubscribe, leavePattern, leaveRoom } from "./rooms.js";
import { Tracing } from "./tracing.js";
import { SpanStatusCode, type Span } from "@opentelemetry/api";
import { handleStateGet, handleStateSet, watchState } from "./state.js";
import type { RevocationRule, TenantRegistry } from "./tenants.js";

export type { Backends } from "./context.js";

interface UpgradeContext {
  auth: AuthContext;
  codec: WireCodec;
  /** The wire protocol version asked for with `?protocol=` (else the default). */
  version: ProtocolVersion;
  /** The WebSocket subprotocol to answer with, if any. */
  protocol: string | false;
  ip: string;
  gateway: Gateway;
}

const kUpgrade = Symbol("arqon.upgrade");
const kUpgradeSpan = Symbol("arqon.upgradeSpan");
/** A socket being upgraded while tracing is on: its `arqon connect` span. */
type TracedSocket = Duplex & { [kUpgradeSpan]?: { span: Span; refused: boolean } };
type UpgradeRequest = IncomingMessage & { [kUpgrade]?: UpgradeContext };
type UpgradingSocket = Duplex & { [kUpgrade]?: UpgradeContext };

function onHandshakeSocketError(this: Duplex): void {
  this.destroy();
}

/** A socket closed between verification and the WebSocket's creation: its pending slots are released. */
function onEarlyClose(this: UpgradingSocket): void {
  const ctx = this[kUpgrade];
  if (ctx) ctx.gateway.releaseUpgradeSlot(ctx.ip, ctx.auth.tenant);
}

/** What the gateway needs besides its options and backends: the tenant machinery built by createArqonServer. */
export interface TenancyDeps {
  tenants: TenantRegistry;
  rooms: RoomRegistry;
  quota: ConnectionQuota;
  commandDeps: Omit<CommandDeps, "registry">;
  /** Resolves once the tenants, revocations and CASIL layers were loaded; upgrades wait for it. */
  ready: Promise<void>;
  /** This node's id (message ids, control messages, connection leases). */
  nodeId: string;
  /** The proxy hooks' client. */
  proxy: ProxyHooks;
}

/** A connection that passed `Gateway.admit`: who it is, the protocol version it asked for, and its address. */
export interface Admission {
  ok: true;
  auth: AuthContext;
  version: ProtocolVersion;
  ip: string;
}

/** Why `Gateway.admit` turned a connection away: the HTTP status, error code, message and headers to answer with. */
export interface Refusal {
  ok: false;
  status: number;
  code: string;
  message: string;
  headers?: Record<string, string>;
}

function refusal(status: number, code: string, message: string, headers?: Record<string, string>): Refusal {
  return headers === undefined ? { ok: false, status, code, message } : { ok: false, status, code, message, headers };
}

/** The 401 refusal of an authentication failure, with its `WWW-Authenticate` challenge. */
export function authRefusal(e: AuthError): Refusal {
  const challenge = e.code === ErrorCode.AUTH_MISSING ? 'Bearer realm="arqon"' : `Bearer realm="arqon", error="invalid_token"`;
  return refusal(401, e.code, e.message, { "www-authenticate": challenge });
}

const kConnection = Symbol("arqon.connection");
const kGateway = Symbol("arqon.gateway");
type ArqonSocket = WebSocket & { [kConnection]: Connection; [kGateway]: Gateway };

function onSocketMessage(this: WebSocket, data: Buffer, isBinary: boolean): void {
  const ws = this as ArqonSocket;
  ws[kGateway].onMessage(ws[kConnection], data, isBinary);
}

function onSocketPong(this: WebSocket): void {
  (this as ArqonSocket)[kConnection].awaitingPong = false;
}

function onSocketError(this: WebSocket, err: Error): void {
  const ws = this as ArqonSocket;
  ws[kGateway].logger.debug({ err, clientId: ws[kConnection].id }, "socket error");
}

function onSocketClose(this: WebSocket, code: number): void {
  const ws = this as ArqonSocket;
  const gw = ws[kGateway];
  gw.onClose(ws[kConnection], code).catch((err: unknown) => gw.logger.error({ err }, "connection cleanup failed"));
}

/**
 * The `code` label of `arqon_closes_total`: the codes the gateway and RFC 6455 define, else a range bucket. A close
 * code is chosen by the peer, so taking it as it came would let one client create a series per code.
 */
// 1005: the peer closed without a status code.
const KNOWN_CLOSE_CODES = new Set<number>([...Object.values(CloseCode), 1005]);
export function closeCodeLabel(code: number): string {
  if (KNOWN_CLOSE_CODES.has(code)) return String(code);
  if (code >= 1000 && code <= 2999) return "other_1000_2999";
  if (code >= 3000 && code <= 3999) return "other_3000_3999";
  if (code >= 4000 && code <= 4999) return "other_4000_4999";
  return "other";
}

/**
 * Client ids: 16 base64url characters (96 random bits) cut from a pool of random bytes refilled 4 KB at a time, so a
 * handshake does not pay for a CSPRNG call of its own.
 */
const idPool = Buffer.allocUnsafe(4096);
let idPoolAt = idPool.length;
function nextClientId(): string {
  if (idPoolAt + 12 > idPool.length) {
    randomFillSync(idPool);
    idPoolAt = 0;
  }
  const id = idPool.toString("base64url", idPoolAt, idPoolAt + 12);
  idPoolAt += 12;
  return id;
}

/**
 * The WebSocket side of the server: upgrade (auth, limits, codec), connection lifecycle (welcome, keepalive, token
 * expiry, close), and the dispatch of inbound frames to the handlers of each concern.
 */
export class Gateway {
  readonly connections = new Set<Connection>();
  readonly byTenant = new Map<string, Set<Connection>>();
  readonly fanout: Fanout;
  readonly presenceManager: PresenceManager;
  readonly wss: WebSocketServer;
  readonly path: string;
  readonly version: string;
  readonly nodeId: string;
  readonly startedAt = Date.now();
  /** Per room, the bus publish of the newest append started on this node (see `inOrder` in rooms.ts). */
  readonly publishOrder = new Map<string, Promise<void>>();
  /** What the frame and command handlers get (context.ts). */
  readonly ctx: HandlerContext;
  inspector: Inspector;
  shuttingDown = false;
  private loaded = false;
  private readonly ipCounter = new ConnectionCounter();
  private pendingUpgrades = 0;
  private readonly commandDeps: CommandDeps;
  private readonly sweepTimer: NodeJS.Timeout;
  private readonly unwatch: Array<() => void> = [];
  private readonly endReasons = new WeakMap<Connection, EndReason>();
  /** The close code the gateway chose for a connection it closed: a slow consumer's socket is cut, so it sees 1006. */
  private readonly endCodes = new WeakMap<Connection, number>();
  private messageCounter = 0;
  /** The gateway's spans while tracing is on (`options.tracing`). */
  readonly tracing: Tracing | undefined;
  private wireLimitsCache: ReturnType<typeof wireLimits> | undefined;

  constructor(
    readonly options: ArqonServerOptions,
    readonly limits: ResolvedLimits,
    readonly backends: Backends,
    inspector: Inspector,
    readonly authenticator: Authenticator,
    readonly commands: CommandRegistry,
    readonly metrics: ServerMetrics,
    readonly logger: Logger,
    version: string,
    readonly tenancy: TenancyDeps,
  ) {
    this.inspector = inspector;
    this.nodeId = tenancy.nodeId;
    void tenancy.ready.then(
      () => (this.loaded = true),
      () => undefined,
    );
    this.commandDeps = { ...tenancy.commandDeps, registry: commands };
    this.path = options.path ?? "/ws";
    this.version = version;
    const deflate = options.perMessageDeflate;
    const deflateThreshold = typeof deflate === "object" ? (deflate.threshold ?? 1024) : 1024;
    this.fanout = new Fanout(
      metrics,
      deflateThreshold,
      (conn) => this.closeConnection(conn, CloseCode.SLOW_CONSUMER, "slow consumer", "slow_consumer"),
      createDelta,
    );
    if (options.tracing) {
      this.tracing = new Tracing(options.tracing === true ? {} : options.tracing, version);
      this.fanout.tracing = this.tracing;
      this.fanout.nodeId = this.nodeId;
    }
    this.wss = new WebSocketServer({
      noServer: true,
      clientTracking: false,
      maxPayload: limits.maxFrameBytes,
      perMessageDeflate: deflate ? { threshold: deflateThreshold, zlibInflateOptions: { maxOutputLength: limits.maxFrameBytes } } : false,
      handleProtocols: (_protocols, req) => (req as UpgradeRequest)[kUpgrade]?.protocol ?? false,
    });
    this.wss.on("error", (err) => this.logger.error({ err }, "websocket server error"));
    const deps = {
      limits,
      backends,
      fanout: this.fanout,
      logger,
      inspect: (input: InspectionInput) => inspectOrThrow(this.inspector, input, logger),
    };
    this.presenceManager = new PresenceManager(deps, options.presenceOptions);
    this.ctx = {
      ...deps,
      presence: this.presenceManager,
      tenants: tenancy.tenants,
      rooms: tenancy.rooms,
      metrics,
      proxy: tenancy.proxy,
      publishOrder: this.publishOrder,
      tracing: this.tracing,
      nextMessageId: () => this.nextMessageId(),
      sendError: (conn, requestId, code, message, retryable) => this.sendError(conn, requestId, code, message, retryable),
      closeConnection: (conn, code, message, reason) => this.closeConnection(conn, code, message, reason),
    };
    this.unwatch.push(
      backends.bus.onEnvelope((key, envelope) => {
        try {
          this.fanout.deliver(key, envelope);
        } catch (err) {
          this.logger.error({ err }, "fan-out failed");
        }
      }),
    );
    this.unwatch.push(watchState(this.ctx));
    registerHistoryCommands(commands, this.ctx);
    const sweepMs = Math.max(20, Math.min(1000, Math.floor(Math.min(limits.pingIntervalMs, limits.pongTimeoutMs) / 4)));
    this.sweepTimer = setInterval(() => this.sweep(), sweepMs);
    this.sweepTimer.unref();
  }

  nextMessageId(): string {
    return `${this.nodeId}-${(++this.messageCounter).toString(36)}`;
  }

  // ---- upgrade -------------------------------------------------------------------------------------------------

  /** ws-style upgrade entry: verifies everything, answers HTTP errors before any WebSocket exists. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on("error", onHandshakeSocketError);
    const traced = this.tracing === undefined ? undefined : this.tracedUpgrade(req, socket);
    const upgrading = this.upgrade(req as UpgradeRequest, socket, head, traced?.span).catch((err: unknown) => {
      this.logger.error({ err }, "upgrade failed");
      this.reject(socket, 500, ErrorCode.INTERNAL, "internal error");
    });
    if (traced !== undefined) void upgrading.then(() => traced.end());
  }

  /** Tracing on: the `arqon connect` span of one upgrade; `reject` marks it with the refusal. */
  private tracedUpgrade(req: IncomingMessage, socket: Duplex): { span: Span; end(): void } {
    const span = this.tracing!.connect(req.headers, this.path);
    const traced = {
      span,
      refused: false,
      end(): void {
        if (!traced.refused) span.setAttribute("http.response.status_code", socket.destroyed ? 499 : 101);
        span.end();
      },
    };
    (socket as TracedSocket)[kUpgradeSpan] = traced;
    return traced;
  }

  /** @internal An upgrade that passed verification ended before its WebSocket existed. */
  releaseUpgradeSlot(ip: string, tenant: string): void {
    this.pendingUpgrades--;
    this.ipCounter.decrement(ip);
    this.tenancy.quota.release(tenant);
  }

  private reject(socket: Duplex, status: number, code: string, message: string, headers?: Record<string, string>): void {
    this.metrics.upgradesRejected.inc({ code });
    const traced = (socket as TracedSocket)[kUpgradeSpan];
    if (traced !== undefined) {
      traced.refused = true;
      traced.span.setAttributes({ "http.response.status_code": status, "arqon.error.code": code });
      traced.span.setStatus({ code: SpanStatusCode.ERROR, message });
    }
    rejectUpgrade(socket, status, code, message, headers);
  }


  private async upgrade(req: UpgradeRequest, socket: Duplex, head: Buffer, span?: Span): Promise<void> {
    if (this.shuttingDown) return this.reject(socket, 503, ErrorCode.SHUTTING_DOWN, "server is shutting down");
    const url = parseTarget(req.url ?? "/");
    if (!url) return this.reject(socket, 400, ErrorCode.HEADER_INVALID, "request target is not a valid URL");
    if (url.pathname !== this.path) return this.reject(socket, 404, ErrorCode.NOT_FOUND, `no WebSocket endpoint at ${url.pathname}`);
    const codecParam = queryParam(url.query, "codec");
    if (codecParam !== null && codecParam !== "json" && codecParam !== "protobuf") {
      return this.reject(socket, 400, ErrorCode.HEADER_INVALID, 'codec must be "json" or "protobuf"');
    }
    const ip = (socket as Socket).remoteAddress ?? "unknown";
    const admitted = await this.admit(req, url.query, ip, () => socket.destroyed, { span, token: extractToken(req, url.query), codec: codecParam ?? "json" });
    if (admitted === undefined) return;
    if (!admitted.ok) return this.reject(socket, admitted.status, admitted.code, admitted.message, admitted.headers);
    const { auth, version } = admitted;
    let handedOver = false;
    try {
      if (socket.destroyed) return;
      const offered = offeredProtocols(req);
      const firstArqon = offered.find((p) => p === SUBPROTOCOL_JSON || p === SUBPROTOCOL_PROTO);
      const codec: WireCodec =
        codecParam === "protobuf" || (codecParam === null && firstArqon === SUBPROTOCOL_PROTO) ? "protobuf" : "json";
      const wanted = codec === "protobuf" ? SUBPROTOCOL_PROTO : SUBPROTOCOL_JSON;
      const ctx: UpgradeContext = { auth, codec, version, ip, protocol: offered.includes(wanted) ? wanted : false, gateway: this };
      req[kUpgrade] = ctx;
      (socket as UpgradingSocket)[kUpgrade] = ctx;
      handedOver = true;
      socket.on("close", onEarlyClose);
      // Corked across the handshake, so that the 101 response and the welcome frame leave in one write (ws completes
      // the upgrade and calls back synchronously; onConnection writes the welcome inside the callback).
      socket.cork();
      // ws answers a broken handshake (bad key or version) with 400 itself; the close listener above releases the slot.
      try {
        this.wss.handleUpgrade(req, socket, head, (ws) => {
          socket.removeListener("close", onEarlyClose);
          socket.removeListener("error", onHandshakeSocketError);
          this.pendingUpgrades--;
          // The context leaves the request and the socket here; the connection keeps what it needs. (A per-upgrade
          // close closure once kept each request, headers and token URL, alive as long as its connection: ~2.8 KB of
          // heap per idle connection, found by bench/ heap snapshots.)
          delete req[kUpgrade];
          (socket as UpgradingSocket)[kUpgrade] = undefined;
          try {
            this.onConnection(ws, ctx);
          } catch (err) {
            this.logger.error({ err }, "connection setup failed");
            ws.close(CloseCode.INTERNAL_ERROR, "internal error");
          }
        });
      } finally {
        socket.uncork();
      }
    } finally {
      if (!handedOver) this.releaseUpgradeSlot(ip, auth.tenant);
    }
  }

  /**
   * The checks every new connection passes, whatever its transport (the WebSocket upgrade, a fallback stream): server
   * state, headers, origin, protocol version, the connection limits of the server and the address, the token (or the
   * connect proxy hook), the tenant, revocations and the tenant's connection quota. Admitted, the caller holds one
   * pending slot of the server, the address and the tenant, and hands them to a connection or gives them back with
   * `releaseUpgradeSlot`. Undefined when the client went away meanwhile (`gone`): nothing is held, nothing to answer.
   */
  async admit(
    req: IncomingMessage,
    query: string,
    ip: string,
    gone: () => boolean,
    how: { span?: Span | undefined; token?: string | undefined; auth?: AuthContext; codec: WireCodec },
  ): Promise<Admission | Refusal | undefined> {
    if (this.shuttingDown) return refusal(503, ErrorCode.SHUTTING_DOWN, "server is shutting down");
    if (req.rawHeaders.length / 2 > this.limits.maxHeaderCount) {
      return refusal(431, ErrorCode.HEADER_INVALID, `more than ${this.limits.maxHeaderCount} request headers`);
    }
    const origin = req.headers.origin;
    if (origin !== undefined && !this.originAllowed(origin)) return refusal(403, ErrorCode.ORIGIN_FORBIDDEN, "origin not allowed");
    const versionParam = queryParam(query, "protocol");
    if (versionParam !== null && !isProtocolVersion(versionParam)) {
      return refusal(400, ErrorCode.PROTOCOL_UNSUPPORTED, `protocol must be one of ${PROTOCOL_VERSIONS.join(", ")}`);
    }
    const version: ProtocolVersion = versionParam ?? PROTOCOL_VERSION;
    if (this.connections.size + this.pendingUpgrades >= this.limits.maxConnections) {
      return refusal(503, ErrorCode.TOO_MANY_CONNECTIONS, "server connection limit reached", { "retry-after": "5" });
    }
    if (this.ipCounter.get(ip) >= this.limits.maxConnectionsPerIp) {
      return refusal(429, ErrorCode.TOO_MANY_CONNECTIONS, "too many connections from this address", { "retry-after": "5" });
    }
    // Hold the address's slot during the asynchronous verification so that a burst cannot overshoot the limit.
    this.ipCounter.increment(ip);
    this.pendingUpgrades++;
    let admitted = false;
    let quotaTenant: string | undefined;
    try {
      let auth: AuthContext | undefined = how.auth;
      const token = how.token;
      // Without a token the connect proxy hook (if any) may admit the connection instead (session cookies).
      let verifying: AuthError | undefined;
      if (auth === undefined) {
        try {
          auth = await this.authenticator.verify(token);
        } catch (err) {
          verifying = err instanceof AuthError ? err : new AuthError(ErrorCode.AUTH_INVALID, "token could not be verified", { cause: err });
        }
        if (verifying && (token !== undefined || verifying.code !== ErrorCode.AUTH_MISSING)) return authRefusal(verifying);
      }
      if (!this.loaded) await this.tenancy.ready;
      if (gone()) return undefined;
      if (this.shuttingDown) return refusal(503, ErrorCode.SHUTTING_DOWN, "server is shutting down");
      const tenants = this.tenancy.tenants;
      const named = auth?.tenant ?? queryParam(query, "tenant") ?? undefined;
      if (named !== undefined && !isValidTenant(named)) return refusal(400, ErrorCode.TENANT_INVALID, "tenant must be 1-64 characters of letters, digits, _ and -");
      const connectHook = how.auth !== undefined ? undefined : (named === undefined ? this.tenancy.proxy.serverHooks : tenants.runtime(named).hooks)?.connect;
      if (connectHook) {
        try {
          auth = await this.tenancy.proxy.connect(connectHook, {
            req,
            auth,
            tenant: named,
            ip,
            codec: how.codec,
            protocol: version,
            defaultTenant: this.options.auth.defaultTenant,
          });
        } catch (err) {
          const refused = this.tenancy.proxy.refusalOf(err);
          return refusal(refused.status, refused.code, refused.message);
        }
        if (gone()) return undefined;
      }
      if (!auth) return authRefusal(verifying ?? new AuthError(ErrorCode.AUTH_MISSING, "a bearer token is required"));
      if (auth.expiresAt !== undefined && Date.now() >= auth.expiresAt) return authRefusal(new AuthError(ErrorCode.AUTH_EXPIRED, "token expired"));
      const tenantRefusal = tenants.refusal(auth.tenant);
      if (tenantRefusal) return refusal(403, tenantRefusal.code, tenantRefusal.message);
      if (tenants.revocationOf(auth)) {
        return refusal(401, ErrorCode.AUTH_REVOKED, "token revoked", { "www-authenticate": 'Bearer realm="arqon", error="invalid_token"' });
      }
      let acquired = this.tenancy.quota.acquire(auth.tenant, tenants.runtime(auth.tenant).limits.maxConnections);
      if (acquired !== true && acquired !== false) {
        try {
          acquired = await acquired;
        } catch (err) {
          this.logger.warn({ err, tenant: auth.tenant }, "connection quota unavailable");
          return refusal(503, ErrorCode.BACKEND_UNAVAILABLE, "connection quota unavailable", { "retry-after": "5" });
        }
      }
      if (!acquired) return refusal(429, ErrorCode.TOO_MANY_CONNECTIONS, "tenant connection limit reached", { "retry-after": "5" });
      quotaTenant = auth.tenant;
      how.span?.setAttributes({ "arqon.tenant": auth.tenant, "enduser.id": auth.sub });
      if (gone()) return undefined;
      admitted = true;
      return { ok: true, auth, version, ip };
    } finally {
      if (!admitted) {
        this.pendingUpgrades--;
        this.ipCounter.decrement(ip);
        if (quotaTenant !== undefined) this.tenancy.quota.release(quotaTenant);
      }
    }
  }

  /** Whether `allowedOrigins` lets a browser page of `origin` connect (every origin when it is not set). */
  originAllowed(origin: string): boolean {
    const allowed = this.options.allowedOrigins;
    return !allowed || allowed.includes("*") || allowed.includes(origin);
  }

  // ---- connection lifecycle ----------------------------------------------------------------------------------

  /**
   * @internal A fallback transport's session (fallback.ts): its stream socket becomes a connection as an upgraded
   * WebSocket does, with the slots `admit` held. `beforeWelcome` writes what must precede the welcome.
   */
  openSession(socket: WebSocket, admitted: Admission, beforeWelcome: (conn: Connection) => void): Connection {
    this.pendingUpgrades--;
    const ctx: UpgradeContext = { auth: admitted.auth, codec: "json", version: admitted.version, ip: admitted.ip, protocol: false, gateway: this };
    return this.onConnection(socket, ctx, beforeWelcome);
  }

  private onConnection(ws: WebSocket, ctx: UpgradeContext, beforeWelcome?: (conn: Connection) => void): Connection {
    const id = nextClientId();
    const conn = new Connection(id, ws, ctx.auth, ctx.codec, ctx.ip, this.limits.maxPendingBytes, this.fanout, this.limits);
    conn.protocol = ctx.version;
    (ws as ArqonSocket)[kConnection] = conn;
    (ws as ArqonSocket)[kGateway] = this;
    this.connections.add(conn);
    let set = this.byTenant.get(conn.tenant);
    if (!set) this.byTenant.set(conn.tenant, (set = new Set()));
    set.add(conn);
    this.metrics.connections.labels(this.metrics.tenant(conn.tenant)).inc();
    this.metrics.connectionsTotal.labels(this.metrics.tenant(conn.tenant)).inc();
    // Shared listeners (the socket carries its connection): no closures per connection.
    ws.on("message", onSocketMessage);
    ws.on("pong", onSocketPong);
    ws.on("error", onSocketError);
    ws.on("close", onSocketClose);
    if (this.authenticator.dev) this.logger.warn({ clientId: id, sub: ctx.auth.sub }, "DEV MODE connection (local dev key)");
    this.logger.debug({ clientId: id, tenant: conn.tenant, sub: conn.auth.sub, codec: conn.codec }, "connected");
    beforeWelcome?.(conn);
    // Written now, not queued for the next flush: the upgrade corked the socket, so it leaves with the 101 response.
    conn.sendNow(this.welcome(conn));
    return conn;
  }

  welcome(conn: Connection, requestId?: string): Frame {
    const frame: Frame = {
      type: "welcome",
      clientId: conn.id,
      version: this.version,
      protocol: conn.protocol,
      tenant: conn.tenant,
      limits: (this.wireLimitsCache ??= wireLimits(this.limits)),
    };
    if (requestId) frame.requestId = requestId;
    if (conn.auth.expiresAt !== undefined) frame.expiresAt = conn.auth.expiresAt;
    return frame;
  }

  /** @internal */
  async onClose(conn: Connection, code: number): Promise<void> {
    if (!this.connections.delete(conn)) return;
    conn.closing = true;
    this.ipCounter.decrement(conn.ip);
    this.tenancy.quota.release(conn.tenant);
    const set = this.byTenant.get(conn.tenant);
    if (set) {
      set.delete(conn);
      if (set.size === 0) this.byTenant.delete(conn.tenant);
    }
    this.metrics.connections.labels(this.metrics.tenant(conn.tenant)).dec();
    this.metrics.closes.inc({ code: closeCodeLabel(this.endCodes.get(conn) ?? code) });
    const reason = this.endReasons.get(conn) ?? (this.shuttingDown ? "shutdown" : "disconnect");
    this.logger.debug({ clientId: conn.id, code, reason }, "disconnected");
    this.dropInbox(conn);
    await this.endSubscriptions(conn, reason);
  }

  /** Ends every subscription of a connection (fan-out, presence leave, bus interest). Idempotent. */
  private async endSubscriptions(conn: Connection, reason: string): Promise<void> {
    const subs = [...conn.subscriptions.values()];
    conn.subscriptions.clear();
    const patterns = [...conn.patterns.values()];
    await Promise.all([...subs.map((sub) => leaveRoom(this.ctx, sub, reason)), ...patterns.map((ps) => leavePattern(this.ctx, ps))]);
  }

  /** Closes a connection with a code (the peer sees it after everything already written). */
  closeConnection(conn: Connection, code: number, message: string, reason: EndReason): void {
    if (conn.closing) return;
    this.endReasons.set(conn, reason);
    this.endCodes.set(conn, code);
    this.logger.info({ clientId: conn.id, tenant: conn.tenant, code, reason }, "closing connection");
    // A slow consumer's close frame sits behind the backlog it is not reading: a long wait keeps that backlog (and the
    // garbage it pins) alive for nothing, so its socket gets a short grace of its own.
    conn.close(code, message, code === CloseCode.SLOW_CONSUMER ? this.limits.slowConsumerCloseMs : (this.options.shutdownTimeoutMs ?? 5000));
    // The socket may take a while to finish closing (a slow consumer reads its backlog first); its presence and
    // subscriptions end now. Deferred because this can run inside a fan-out loop over the room's subscribers.
    setImmediate(() => {
      this.endSubscriptions(conn, reason).catch((err: unknown) => this.logger.error({ err }, "connection cleanup failed"));
    });
  }

  private sweep(): void {
    const now = Date.now();
    const { pingIntervalMs, pongTimeoutMs } = this.limits;
    for (const conn of this.connections) {
      if (conn.closing) continue;
      try {
        const exp = conn.auth.expiresAt;
        if (exp !== undefined && now >= exp) {
          this.closeConnection(conn, CloseCode.TOKEN_EXPIRED, "token expired", "expired");
          continue;
        }
        if (exp !== undefined) this.tenancy.proxy.maybeRefresh(this.ctx, this.tenancy.tenants.runtime(conn.tenant).hooks?.refresh, conn, exp, now);
        if (conn.awaitingPong) {
          if (now - conn.pingSentAt >= pongTimeoutMs) {
            // A peer that answers no ping reads no close frame either: the socket is dropped, and counted as the
            // gateway's 4001 (the peer sees 1006; the SDK's own heartbeat closes with 4001 on its side).
            this.endReasons.set(conn, "timeout");
            this.endCodes.set(conn, CloseCode.PING_TIMEOUT);
            conn.closing = true;
            this.logger.info({ clientId: conn.id, tenant: conn.tenant }, "ping timeout");
            conn.ws.terminate();
          }
        } else if (now - conn.lastPingAt >= pingIntervalMs) {
          conn.awaitingPong = true;
          conn.pingSentAt = now;
          conn.lastPingAt = now;
          conn.ping();
        }
      } catch (err) {
        this.logger.debug({ err, clientId: conn.id }, "keepalive failed");
        conn.ws.terminate();
      }
    }
  }

  // ---- inbound frames ----------------------------------------------------------------------------------------

  /** @internal called by the shared socket listeners (onSocketMessage) */
  onMessage(conn: Connection, data: Buffer, isBinary: boolean): void {
    try {
      this.receive(conn, data, isBinary);
    } catch (err) {
      this.logger.error({ err, clientId: conn.id }, "inbound frame failed");
      this.sendError(conn, undefined, ErrorCode.INTERNAL, "internal error", true);
    }
  }

  private receive(conn: Connection, data: Buffer, isBinary: boolean): void {
    if (conn.closing) return;
    const tenant = conn.tenant;
    this.metrics.messagesIn.labels(tenant).inc();
    this.metrics.bytesIn.labels(tenant).inc(data.length);
    // A text message's bytes go along (ws has checked that they are UTF-8), so its payload can be a view of them.
    const result = isBinary
      ? decodeFrame(data, { maxBytes: this.limits.maxFrameBytes, from: "client" })
      : decodeFrame(data.toString("utf8"), { maxBytes: this.limits.maxFrameBytes, from: "client", source: data });
    if (!result.ok) {
      this.sendError(conn, result.requestId, result.error.code, result.error.message);
      return;
    }
    conn.inbox.push(result.frame);
    if (conn.inbox.length > this.limits.maxInboundQueue) {
      this.closeConnection(conn, CloseCode.RATE_LIMIT_ABUSE, "too many frames in flight", "abuse");
      this.dropInbox(conn);
      return;
    }
    if (!conn.processing) this.pump(conn);
  }

  /**
   * Handles a connection's frames one after the other, so one client's publishes keep their order. Frames whose
   * handler answers within the call (a publish to an in-process room) are handled in this loop without a promise; a
   * handler that goes asynchronous holds the queue until it settles.
   */
  private pump(conn: Connection): void {
    conn.processing = true;
    while (conn.inbox.length > 0 && !conn.closing) {
      const item = conn.inbox.shift()!;
      if (typeof item === "function") {
        // A server action settles its own promise and never rejects (`inTurn`).
        const running = item();
        if (running !== undefined) {
          void running.then(() => this.pump(conn));
          return;
        }
        continue;
      }
      const frame = item;
      let pending: void | Promise<void>;
      try {
        pending = this.dispatch(conn, frame);
      } catch (err) {
        this.replyFailure(conn, frame.requestId, err);
        continue;
      }
      if (pending !== undefined) {
        pending.then(
          () => this.pump(conn),
          (err: unknown) => {
            this.replyFailure(conn, frame.requestId, err);
            this.pump(conn);
          },
        );
        return;
      }
    }
    conn.processing = false;
  }

  /**
   * Runs `action` on a connection in turn with its inbound frames: after the frames already queued and before any
   * that arrive later, so what the server does to the connection (a server-side subscribe) never interleaves with the
   * client's own requests. Resolves with the action's result (rejects with its error), or with undefined, without
   * running it, when the connection closes first.
   */
  inTurn<T>(conn: Connection, action: () => T | Promise<T>): Promise<T | undefined> {
    if (conn.closing) return Promise.resolve(undefined);
    return new Promise<T | undefined>((resolve, reject) => {
      conn.inbox.push(() => {
        if (conn.closing) return resolve(undefined);
        let result: T | Promise<T>;
        try {
          result = action();
        } catch (err) {
          return reject(err);
        }
        if (result instanceof Promise) return result.then(resolve, reject);
        resolve(result);
      });
      if (!conn.processing) this.pump(conn);
    });
  }

  /** Empties a closing connection's inbox: its frames are dropped, its queued server actions resolve undefined. */
  private dropInbox(conn: Connection): void {
    for (const item of conn.inbox.splice(0)) if (typeof item === "function") void item();
  }

  /** Turns a thrown error into an error frame: ArqonErrors keep their code, anything else is ARQ_INTERNAL. */
  replyFailure(conn: Connection, requestId: string | undefined, err: unknown): void {
    if (err instanceof ArqonError) {
      this.sendError(conn, requestId, err.code, err.message, err.retryable);
      return;
    }
    this.logger.error({ err, clientId: conn.id }, "handler failed");
    this.sendError(conn, requestId, ErrorCode.INTERNAL, "internal error", true);
  }

  sendError(conn: Connection, requestId: string | undefined, code: string, message: string, retryable?: boolean): void {
    this.metrics.errors.labels(this.metrics.tenant(conn.tenant), code).inc();
    const frame: Frame = { type: "error", error: retryable ? { code, message, retryable } : { code, message } };
    if (requestId) frame.requestId = requestId;
    conn.send(frame);
  }

  private dispatch(conn: Connection, frame: Frame): void | Promise<void> {
    // The room capability check of every frame, in one place (authority.ts); commands check their own access.
    authorizeFrame(conn.auth, frame);
    const ctx = this.ctx;
    switch (frame.type) {
      case "subscribe":
        return handleSubscribe(ctx, conn, frame);
      case "unsubscribe":
        return handleUnsubscribe(ctx, conn, frame);
      case "publish":
        return handlePublish(ctx, conn, frame);
      case "history":
        return handleHistory(ctx, conn, frame);
      case "presence_list":
        return this.presenceManager.handleList(conn, frame);
      case "presence_set":
        return this.presenceManager.handleSet(conn, frame);
      case "state_get":
        return handleStateGet(ctx, conn, frame);
      case "state_set":
        return handleStateSet(ctx, conn, frame);
      case "command":
        // Commands may be slow (webhooks, stores); they do not hold up the connection's other frames.
        void handleCommand(ctx, this.commandDeps, conn, frame).catch((err: unknown) => this.replyFailure(conn, frame.requestId, err));
        return;
      case "auth":
        return this.handleAuth(conn, frame);
      case "rpc":
        // Like commands, an rpc waits for the application backend without holding up the connection's other frames.
        void handleRpc(ctx, conn, frame).catch((err: unknown) => this.replyFailure(conn, frame.requestId, err));
        return;
      case "hello":
        return this.handleHello(conn, frame);
      case "ping":
        conn.send(frame.requestId ? { type: "pong", requestId: frame.requestId } : { type: "pong" });
        return;
      case "pong":
        return;
      default:
        this.sendError(conn, frame.requestId, ErrorCode.FRAME_UNEXPECTED, `clients may not send "${frame.type}" frames`);
    }
  }

  /**
   * `hello`: answered by `welcome`. With `protocol`, the connection switches to that version first, so the welcome
   * and every frame after it use it; an unknown version is refused and the connection keeps the one it had.
   */
  private handleHello(conn: Connection, frame: Frame): void {
    const wanted = frame.protocol;
    if (wanted !== undefined) {
      if (!isProtocolVersion(wanted)) {
        return this.sendError(conn, frame.requestId, ErrorCode.PROTOCOL_UNSUPPORTED, `protocol "${wanted.slice(0, 16)}" is not supported (${PROTOCOL_VERSIONS.join(", ")})`);
      }
      conn.protocol = wanted;
    }
    conn.send(this.welcome(conn, frame.requestId));
  }

  private async handleAuth(conn: Connection, frame: Frame): Promise<void> {
    let next: AuthContext;
    try {
      next = await this.authenticator.verify(frame.token);
    } catch (err) {
      const e = err instanceof ArqonError ? err : new AuthError(ErrorCode.AUTH_INVALID, "token could not be verified");
      return this.sendError(conn, frame.requestId, e.code, e.message);
    }
    if (next.sub !== conn.auth.sub || next.tenant !== conn.auth.tenant) {
      return this.sendError(conn, frame.requestId, ErrorCode.AUTH_MISMATCH, "a refreshed token must have the same sub and tenant");
    }
    if (this.tenancy.tenants.revocationOf(next)) return this.sendError(conn, frame.requestId, ErrorCode.AUTH_REVOKED, "token revoked");
    conn.auth = next;
    const reply: Frame = { type: "auth_ok" };
    if (frame.requestId) reply.requestId = frame.requestId;
    if (next.expiresAt !== undefined) reply.expiresAt = next.expiresAt;
    conn.send(reply);
  }

  // ---- tenant actions ------------------------------------------------------------------------------------------

  /** Closes this node's connections of `tenant` that `match` selects; resolves to how many. */
  closeTenantConnections(tenant: string, match: (conn: Connection) => boolean, code: number, message: string, reason: EndReason): number {
    let closed = 0;
    for (const conn of [...(this.byTenant.get(tenant) ?? [])]) {
      if (conn.closing || !match(conn)) continue;
      this.closeConnection(conn, code, message, reason);
      closed++;
    }
    return closed;
  }

  /** Closes (4500) this node's live connections whose token a revocation rule now refuses. */
  applyRevocations(tenant: string, rules: readonly RevocationRule[]): number {
    if (rules.length === 0) return 0;
    return this.closeTenantConnections(tenant, (conn) => this.tenancy.tenants.revocationOf(conn.auth) !== undefined, CloseCode.AUTH_INVALID, "token revoked", "revoked");
  }

  // ---- shutdown ----------------------------------------------------------------------------------------------

  /** Stops accepting, closes every socket with 1001 going away after flushing what was queued, and waits. */
  async shutdown(timeoutMs: number): Promise<void> {
    this.shuttingDown = true;
    clearInterval(this.sweepTimer);
    const closed: Array<Promise<void>> = [];
    for (const conn of this.connections) {
      closed.push(
        new Promise<void>((resolve) => {
          if (conn.ws.readyState === conn.ws.CLOSED) return resolve();
          conn.ws.once("close", () => resolve());
        }),
      );
      try {
        conn.flush(Number.POSITIVE_INFINITY);
      } catch {
        // the close below still runs
      }
      this.endReasons.set(conn, "shutdown");
      conn.close(CloseCode.GOING_AWAY, "server shutting down", timeoutMs);
    }
    await Promise.all(closed);
    for (const off of this.unwatch) off();
    this.presenceManager.stop();
    this.wss.close();
  }
}
