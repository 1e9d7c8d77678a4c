/**
 * @arqon/server — the ArqonBus WebSocket gateway for Node: JWT auth at the upgrade, tenant-scoped rooms with acks and
 * recovery, presence, room state, commands, pre-framed fan-out, limits and Prometheus metrics; standalone
 * (`createArqonServer(options).listen(port)`) or inside an existing HTTP server (`server.attach(httpServer)`).
 *
 * @module @arqon/server
 */
import type { Tracer } from "@opentelemetry/api";
import { randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Duplex } from "node:stream";
import { pino, type Logger } from "pino";
import type { Registry } from "prom-client";
import {
  ArqonError,
  ErrorCode,
  MemoryBus,
  MemoryHistoryStore,
  MemoryKeyValueStore,
  MemoryPresenceStore,
  MemoryRoomStateStore,
  allowAll,
  isValidTenant,
  jsonBytes,
  parseRoomKey,
  roomKey,
  roomNameProblem,
  type Frame,
  type CasilPolicyDocument,
  type HistoryPage,
  type HistoryQuery,
  type RetentionPolicy,
  type RoomKey,
  type Bus,
  type ControlPlane,
  type HistoryStore,
  type Inspector,
  type KeyValueStore,
  type PayloadFormat,
  type PresenceStore,
  type RoomStateStore,
} from "@arqon/core";
import pkg from "../package.json" with { type: "json" };
import { ServerApi, type ApiRoute } from "./admin-http.js";
import { clusterRoutes } from "./api-cluster.js";
import { ApiRateLimiter } from "./api-rate-limit.js";
import { roomRoutes } from "./api-rooms.js";
import { userRoutes } from "./api-users.js";
import { ServerSubscriptions } from "./api-subscriptions.js";
import { AUDIT_RETENTION, AuditLog, isAuditKey, type AuditActor } from "./audit.js";
import { casilRoutes, registerCasilCommands } from "./casil/commands.js";
import { LayeredCasil } from "./casil/layers.js";
import { registerCasilLayerMetrics } from "./casil/layer-metrics.js";
import { registerCasilMetrics } from "./casil/metrics.js";
import { createAuthenticator } from "./auth.js";
import { KeySet } from "./authority.js";
import { CommandRegistry, type CommandHandler, type CommandOptions } from "./commands.js";
import { DEFAULT_PORT, resolveLimits, type ArqonServerOptions } from "./config.js";
import { ClusterInfo } from "./cluster-info.js";
import { ClusterControl, clusterKeyOf } from "./control.js";
import { Gateway, type Backends } from "./gateway.js";
import { handleHttp, statusOf, type HttpSurface } from "./http.js";
import { consoleRoutes } from "./api-console.js";
import { ConsoleAssets, defaultConsoleDir } from "./console-http.js";
import { resolvePusherOptions } from "./pusher/config.js";
import { PusherGateway } from "./pusher/gateway.js";
import { PusherHttpApi } from "./pusher/http.js";
import { FallbackTransport, resolveFallback } from "./fallback.js";
import { errorBody, rejectUpgrade, sendError } from "./http-util.js";
import { ServerMetrics, type ServerMeter } from "./metrics.js";
import { OutboundGuard } from "./outbound.js";
import { ProxyHooks } from "./proxy.js";
import { mergeTenantProxy } from "./proxy-config.js";
import { LeasedConnectionQuota, LocalConnectionQuota, RoomRegistry, UsageCounter, type TenantUsage } from "./quota.js";
import { serverPublish, type PublishResult } from "./rooms.js";
import { TENANT_TOPICS, TenantAdmin } from "./tenant-admin.js";
import { TenantRegistry, builtinTenantLimits, type ResolvedTenantLimits } from "./tenants.js";

export { DEFAULT_PORT, WS_PATH, SUBPROTOCOL_JSON, SUBPROTOCOL_PROTO, SUBPROTOCOL_BEARER_PREFIX, resolveLimits } from "./config.js";
export type { ArqonServerOptions, LimitOptions, PresenceOptions, ResolvedLimits } from "./config.js";
export {
  TenantRegistry,
  parseTenantLimits,
  builtinTenantLimits,
  TENANT_LIMIT_FIELDS,
  DEFAULT_REVOCATION_TTL_MS,
  type TenantLimits,
  type TenantLimitOptions,
  type ResolvedTenantLimits,
  type TenantRecord,
  type TenantStatus,
  type TenancyMode,
  type RevocationRule,
} from "./tenants.js";
export { TenantAdmin, type TenantView } from "./tenant-admin.js";
export { AuditLog, AUDIT_ROOM, SERVER_AUDIT_TENANT, type AuditRecord, type AuditActor } from "./audit.js";
export { KeySet, MIN_KEY_LENGTH, type Principal, type CommandAccess, type HttpAccess } from "./authority.js";
export { ClusterControl, clusterKeyOf, MIN_CLUSTER_KEY_LENGTH } from "./control.js";
export { httpStatusOf, type ApiRoute } from "./admin-http.js";
export { CONSOLE_PATH, CONSOLE_CSP, defaultConsoleDir } from "./console-http.js";
export { CONSOLE_TOKEN_TTL_SEC, CONSOLE_READ_CAPS } from "./api-console.js";
export { openApiDocument, operationKey, openApiPath, API_OPERATIONS, FIXED_ROUTES, OPENAPI_PATH, GENERIC_MARK, type ApiOperationSpec, type FixedRoute, type DocumentedRoute, type OpenApiOptions, type JsonSchema } from "./openapi.js";
export { ProxyHooks, ProxyHook, type ResolvedHooks, type ProxyFailure } from "./proxy.js";
export { PROXY_HOOKS, type ProxyHookName, type ProxyHookOptions, type ProxyOptions, type TenantProxy, type ResolvedHookOptions } from "./proxy-config.js";
export { ApiRateLimiter, ApiRateLimitedError, type ApiRateLimitOptions } from "./api-rate-limit.js";
export { CLUSTER_TOPICS, type KnownNode } from "./cluster-info.js";
export { OutboundGuard, OutboundError, type OutboundOptions, type OutboundResponse, type OutboundFailure, type CheckedTarget } from "./outbound.js";
export type { TenantUsage } from "./quota.js";
export { OTHER_TENANT_LABEL, DEFAULT_MAX_TENANT_LABELS, FANOUT_BUCKETS, TenantLabels, type ServerMeter } from "./metrics.js";
export { createAuthenticator, can, AuthError, signToken, parseTtl } from "./auth.js";
export type { AuthOptions, AuthContext, Capabilities, Capability, Authenticator, SignTokenOptions } from "./auth.js";
export { createLogger, type LoggerOptions } from "./logger.js";
export { HEADER_TRACEPARENT, HEADER_TRACESTATE, parseTraceparent, formatTraceparent, type TracingOptions } from "./tracing.js";
export { CommandRegistry } from "./commands.js";
export type { CommandContext, CommandHandler, CommandOptions } from "./commands.js";
export { TokenBucket } from "./limits.js";
export type { PublishResult } from "./rooms.js";
export type { PusherOptions, PusherAppOptions } from "./pusher/config.js";
export type { FallbackOptions } from "./fallback.js";
/** Re-exported from @arqon/core, where it now lives (the protocol 1.1 codecs and the SDKs need it too). */
export { DEFAULT_TWIST_ID } from "@arqon/core";
export {
  openEmbeddedStorage,
  DEFAULT_DATA_DIR,
  type EmbeddedStorage,
  type EmbeddedStorageOptions,
  type Durability,
  type RetentionConfig,
  type RetentionRule,
} from "./storage/index.js";
export { HISTORY_COMMANDS, type HistoryCommandMessage } from "./history-commands.js";
export * from "./casil/index.js";

/** The version of @arqon/server (reported in welcome and /version unless overridden). */
export const SERVER_VERSION: string = pkg.version;

/** Options of `ArqonServer.publish`. */
export interface PublishOptions {
  /** Which CASIL path inspects it: "operator" for messages operators emit. @default "server_publish" */
  path?: "server_publish" | "operator";
  /** Message headers; the server sets `x-timestamp`, and `x-twist-id` ("main") when absent. */
  headers?: Record<string, string>;
  /** A repeat with the same key within `dedupeWindowMs` is answered as a duplicate, not stored or delivered again. */
  idempotencyKey?: string;
  /** Shown to subscribers as the message's `sender`. @default "server" */
  sender?: string;
}

/** An ArqonBus gateway: embed it in an existing HTTP server or let it listen on its own. */
export interface ArqonServer {
  /** Handles WebSocket upgrades at the configured path on an existing server (HTTP routes stay the app's). */
  attach(server: Server): void;
  /** ws-style entry for frameworks that route upgrades themselves. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void;
  /**
   * Serves /health, /ready, /version, /status, /metrics, POST /api/publish, the server API and, with `pusher` set, the
   * Pusher HTTP API under /apps/; resolves false for other paths.
   */
  handleRequest(req: IncomingMessage, res: ServerResponse): Promise<boolean>;
  /** Starts an HTTP server of its own (WebSocket and HTTP routes on one port). @default port 9100, host "127.0.0.1" */
  listen(port?: number, host?: string): Promise<AddressInfo>;
  /** Publishes into a tenant's room as the server; a JSON value, or bytes (sent with payloadFormat "binary"). */
  publish(tenant: string, room: string, payload: unknown, options?: PublishOptions): Promise<PublishResult>;
  /**
   * Subscribes in-process to a tenant's room: `handler` gets every `message` frame delivered to this node (the same
   * frames clients get, in order). Resolves once the bus interest is in place, with a function that ends it.
   */
  subscribe(tenant: string, room: string, handler: (frame: Frame) => void): Promise<() => Promise<void>>;
  /** One page of a tenant's room history (what the `history` frame reads), for server-side readers such as op.webhook. */
  readHistory(tenant: string, room: string, query: HistoryQuery): Promise<HistoryPage>;
  /** The guard every server-side request goes through (webhooks, proxy hooks): see `OutboundOptions`. */
  readonly outbound: OutboundGuard;
  /** This node's id (message ids, leases, control messages). */
  readonly nodeId: string;
  /** Whether this server shares its stores with other nodes (it has a control plane). */
  readonly clustered: boolean;
  /** Graceful stop: refuse new connections, close every socket with 1001 (going away), drain, close own backends. */
  close(): Promise<void>;
  /** The listening address, once `listen()` resolved. */
  readonly address: AddressInfo | null;
  /** `ws://host:port/ws` once listening. */
  readonly url: string | undefined;
  /**
   * Registers a command (`op.<name>.<verb>`) that clients run with `command` frames; returns a function that removes
   * it. Throws VALIDATION_ERROR for a malformed or already registered name.
   */
  registerCommand(name: string, handler: CommandHandler, options?: CommandOptions): () => void;
  /** The command registry (`registerCommand` adds to it). */
  readonly commands: CommandRegistry;
  /** The bus in use (`options.bus`, or the in-memory one the server made). */
  readonly bus: Bus;
  /** The control plane in use; undefined on a single node. */
  readonly controlPlane: ControlPlane | undefined;
  /** The history store in use (`options.history`, or the in-memory one). */
  readonly history: HistoryStore;
  /** The presence store in use (`options.presence`, or the in-memory one). */
  readonly presence: PresenceStore;
  /** The room state store in use (`options.state`, or the in-memory one). */
  readonly state: RoomStateStore;
  /** The key-value store in use (`options.kv`, or the in-memory one). */
  readonly kv: KeyValueStore;
  /** The CASIL hook in use; assign to replace it at runtime. */
  inspector: Inspector;
  /** This instance's Prometheus registry. */
  readonly metrics: Registry;
  /** Adds counters and gauges to `metrics` with the server's bounded tenant label (the operators use it). */
  readonly meter: ServerMeter;
  /** The tracer of the server's spans while tracing is on (`options.tracing`); operators trace their work with it. */
  readonly tracer?: Tracer;
  /** The server's logger (`options.logger`, or its own pino logger). */
  readonly logger: Logger;
  /** What GET /status answers. */
  status(): Record<string, unknown>;
  /** Open WebSocket connections. */
  readonly connectionCount: number;
  /** Resolves once tenants, revocations and CASIL layers are loaded from the stores (`listen()` waits for it). */
  readonly ready: Promise<void>;
  /** This server's tenants: records, limits, revocations (as stored, and as this node applies them). */
  readonly tenants: TenantRegistry;
  /** Tenant actions of the operator (the server API calls these): create, set, disable, enable, delete, kick, revoke. */
  readonly admin: TenantAdmin;
  /** The audit trail. */
  readonly audit: AuditLog;
  /** CASIL with its tenant layers, when the server was given `casil`. */
  readonly casil: LayeredCasil | undefined;
  /** Node-to-node messages (signed); `rejected` counts forged, stale and replayed ones. */
  readonly control: ClusterControl;
  /** The limits in force for a tenant. */
  tenantLimits(tenant: string): ResolvedTenantLimits;
  /** Charges a tenant's usage counters (op.store keys and bytes) within its limits; ARQ_QUOTA_EXCEEDED beyond. */
  chargeUsage(tenant: string, delta: Partial<TenantUsage>): Promise<TenantUsage>;
  /**
   * The history retention of a room as the tenant's limits set it, on top of `base` (the store's own rule for the
   * room). Pass it to the history store: `retention: (key) => server.historyRetention(key, rule(key))`. The audit
   * trail keeps its own retention (10,000 records, 30 days).
   */
  historyRetention(key: RoomKey, base?: RetentionPolicy): RetentionPolicy;
  /** Called on every node when a tenant is deleted (operators drop its schedules and hooks). Returns an unsubscribe. */
  onTenantRemoved(listener: (tenant: string) => void | Promise<void>): () => void;
  /** Adds routes to the server API (`/api/v1/...`). */
  addApiRoutes(routes: ApiRoute[]): void;
  /** Every route of the server API router, in the order it matches them (GET /api/v1/openapi.json documents them). */
  apiRoutes(): readonly ApiRoute[];
}

const CASIL_TOPICS = { baseline: "casil.reload", layer: "casil.layer" } as const;
/** How often a cluster node re-reads tenants, revocations and CASIL layers from the store. */
const RESYNC_MS = 30_000;

/** The actor of in-process operator calls (audit records name it). */
export const IN_PROCESS_OPERATOR: AuditActor = { kind: "operator", key: "in-process" };

function isHttpParserError(err: Error & { code?: string }): boolean {
  return typeof err.code === "string" && err.code.startsWith("HPE_");
}

/**
 * Creates a gateway. Backends not given are in-memory ones the server owns (`close()` closes them). Loading tenants,
 * revocations and CASIL layers from the stores starts at once (see `ready`). Throws when the options do not hold
 * together: auth without a secret, key or JWKS URL, both `casil` and `inspector`, an unknown `tenancy`, an operator
 * key or scrape token shorter than 24 characters, a cluster key shorter than 32 bytes, or a `controlPlane` without
 * a `clusterKey` or `auth.secret` to sign with.
 */
export function createArqonServer(options: ArqonServerOptions): ArqonServer {
  const limits = resolveLimits(options.limits);
  const logger = options.logger ?? pino({ name: "arqon", level: process.env.ARQON_LOG_LEVEL ?? "info" });
  const owned: Array<{ close(): Promise<void> }> = [];
  function own<T extends { close(): Promise<void> }>(value: T | undefined, create: () => T): T {
    if (value) return value;
    const created = create();
    owned.push(created);
    return created;
  }
  const backends: Backends = {
    bus: own(options.bus, () => new MemoryBus()),
    controlPlane: options.controlPlane,
    history: own(options.history, () => new MemoryHistoryStore()),
    presence: own(options.presence, () => new MemoryPresenceStore()),
    state: own(options.state, () => new MemoryRoomStateStore()),
    kv: own(options.kv, () => new MemoryKeyValueStore()),
  };
  const authenticator = createAuthenticator(options.auth);
  if (authenticator.dev) {
    logger.warn("DEV MODE: tokens signed with the local development key under ./.arqon/ are accepted. Never use this in production.");
  }
  const commands = new CommandRegistry();
  // The rooms gauge is read at scrape time, after `gw` exists.
  const history = backends.history;
  const metrics: ServerMetrics = new ServerMetrics({
    processMetrics: options.processMetrics,
    maxTenantLabels: options.metrics?.maxTenantLabels,
    rooms: (): number => gw.fanout.rooms.size,
    backendStatus: options.backendStatus,
    historyStats: history.stats ? () => history.stats!() : undefined,
  });
  const nodeId = randomBytes(6).toString("base64url");
  const outbound = new OutboundGuard(options.outbound);
  const proxy = new ProxyHooks(options.proxy ?? {}, outbound, metrics, logger);
  const keys = { operator: new KeySet(options.operatorKeys ?? []), scrape: new KeySet(options.scrapeTokens ?? [], "scrape token") };
  const control = new ClusterControl(backends.controlPlane, clusterKeyOf(options.clusterKey, options.auth.secret), nodeId, logger);
  const registry = new TenantRegistry({
    kv: backends.kv,
    mode: options.tenancy ?? "open",
    defaults: { ...builtinTenantLimits(limits), ...options.tenantDefaults },
    configured: options.tenantLimits,
    resolveHooks: (tenant, own) => proxy.resolve(tenant, own),
    mergeProxy: (current, patch) => mergeTenantProxy(current, patch, outbound, proxy.hasSecret),
  });
  if (registry.mode !== "open" && registry.mode !== "registered") throw new ArqonError(ErrorCode.VALIDATION_ERROR, 'tenancy must be "open" or "registered"');
  const usage = new UsageCounter(backends.kv);
  const rooms = new RoomRegistry(
    backends.kv,
    usage,
    async (tenant, room) => {
      const key = roomKey(tenant, room);
      const [page, state] = await Promise.all([backends.history.read(key, { limit: 1, reverse: true }), backends.state.get(key)]);
      return page.messages.length === 0 && state.length === 0;
    },
    (tenant, names) => void control.send(TENANT_TOPICS.roomsForget, { tenant, rooms: names }).catch((err: unknown) => logger.warn({ err }, "could not tell the cluster")),
  );
  const quota = control.clustered ? new LeasedConnectionQuota(backends.kv, nodeId, logger) : new LocalConnectionQuota();
  const audit = new AuditLog(backends.history, logger);
  if (options.casil && options.inspector) throw new ArqonError(ErrorCode.VALIDATION_ERROR, "give casil or inspector, not both");
  const layered = options.casil
    ? new LayeredCasil({
        baseline: options.casil,
        kv: backends.kv,
        logger,
        budgetFor(tenant) {
          const l = registry.runtime(tenant).limits;
          return { budgetMs: l.wasmBudgetMs, maxMemoryPages: Math.max(1, Math.floor(l.wasmMaxMemoryBytes / 65536)), callsPerSecond: l.wasmCallsPerSecond };
        },
        onChange: (tenant) => void control.send(CASIL_TOPICS.layer, { tenant }).catch((err: unknown) => logger.error({ err }, "could not tell the cluster about a CASIL layer")),
      })
    : undefined;
  // Layers after tenants: a layer's Wasm budget comes from its tenant's limits.
  const ready = registry.load().then(async () => {
    if (!layered) return;
    const { failed } = await layered.load();
    for (const f of failed) logger.error({ tenant: f.tenant, error: f.error }, "a stored CASIL layer could not be activated; the tenant's traffic is blocked until it is replaced");
  });
  ready.catch((err: unknown) => logger.error({ err }, "could not load tenants"));
  const chargeUsage = (tenant: string, delta: Partial<TenantUsage>): Promise<TenantUsage> => {
    const l = registry.runtime(tenant).limits;
    return usage.charge(tenant, delta, { storeKeys: l.maxStoreKeys, storeBytes: l.maxStoreBytes });
  };
  const gw: Gateway = new Gateway(
    options,
    limits,
    backends,
    layered ?? options.inspector ?? allowAll,
    authenticator,
    commands,
    metrics,
    logger,
    options.version ?? pkg.version,
    {
      tenants: registry,
      rooms,
      quota,
      ready,
      nodeId,
      proxy,
      commandDeps: {
        audit,
        chargeUsage,
        publish: (tenant, room, payload, sender) => serverPublish(gw.ctx, tenant, room, jsonBytes(payload), { sender }),
      },
    },
  );
  commands.register(
    "op.audit.list",
    (ctx) => {
      const args = typeof ctx.args === "object" && ctx.args !== null && !Array.isArray(ctx.args) ? (ctx.args as Record<string, unknown>) : {};
      const num = (name: string): number | undefined => {
        const v = args[name];
        if (v === undefined) return undefined;
        if (typeof v !== "number") throw new ArqonError(ErrorCode.VALIDATION_ERROR, `"${name}" must be a number`);
        return v;
      };
      return audit.list(ctx.tenant, { limit: num("limit"), before: num("before") });
    },
    { access: "admin", audit: false, description: "the tenant's audit trail, newest first: {limit?, before?}" },
  );
  const removedListeners = new Set<(tenant: string) => void | Promise<void>>();
  const admin = new TenantAdmin({
    gateway: gw,
    registry,
    rooms,
    usage,
    control,
    audit,
    backends,
    logger,
    async onRemoved(tenant) {
      for (const listener of removedListeners) await listener(tenant);
    },
    ...(layered ? { onPurge: async (tenant: string) => void (await layered.clearLayer(tenant, { by: "tenant.delete" })) } : {}),
  });
  const maxBodyBytes = options.http?.maxBodyBytes;
  if (maxBodyBytes !== undefined && (!Number.isSafeInteger(maxBodyBytes) || maxBodyBytes < 1)) {
    throw new ArqonError(ErrorCode.VALIDATION_ERROR, "http.maxBodyBytes must be a whole number of bytes above 0");
  }
  const subscriptions = new ServerSubscriptions({ gateway: gw, control, logger });
  const cluster = new ClusterInfo({ control, logger, beat: { version: gw.version, startedAt: gw.startedAt } });
  const rateLimit = new ApiRateLimiter(options.http?.apiRateLimit);
  const api = new ServerApi({
    tracing: gw.tracing,
    admin,
    registry,
    audit,
    keys,
    authenticator,
    extra: [
      ...(layered ? casilRoutes(layered, audit) : []),
      ...roomRoutes(gw.ctx),
      ...userRoutes({ gateway: gw, admin }),
      ...subscriptions.routes(),
      ...clusterRoutes({ gateway: gw, audit, cluster }),
      ...consoleRoutes(options.auth, audit),
    ],
    rateLimit,
    ...(maxBodyBytes !== undefined ? { maxBodyBytes } : {}),
  });
  if (layered) {
    const baseline = layered.baseline;
    registerCasilCommands(commands, layered);
    registerCasilMetrics(metrics.registry, baseline, (t) => metrics.tenant(t));
    registerCasilLayerMetrics(metrics.registry, layered, (t) => metrics.tenant(t));
    baseline.onReload((event) => {
      if (event.source === "remote") return;
      control.send(CASIL_TOPICS.baseline, { document: event.document, version: event.version }).catch((err: unknown) => logger.error({ err }, "could not tell the cluster about a CASIL reload"));
    });
    control.on(CASIL_TOPICS.baseline, async (body) => {
      const { document, version } = body as { document: CasilPolicyDocument; version: number };
      await baseline.applyRemote(document, version);
    });
    control.on(CASIL_TOPICS.layer, async (body) => {
      await layered.refresh((body as { tenant: string }).tenant);
    });
  } else if (!options.inspector) {
    for (const name of ["op.casil.get", "op.casil.reload"]) commands.disable(name, "CASIL is turned off on this gateway");
  }
  const consoleAssets = options.console
    ? new ConsoleAssets(options.console === true ? defaultConsoleDir() : options.console.dir, options.path ?? "/ws", gw.version)
    : undefined;
  const pusher = options.pusher ? new PusherGateway(gw, resolvePusherOptions(options.pusher), control) : undefined;
  const pusherApi = pusher ? new PusherHttpApi(pusher, maxBodyBytes) : undefined;
  const fallbackOptions = resolveFallback(options.fallback);
  const fallback = fallbackOptions ? new FallbackTransport(gw, fallbackOptions, control) : undefined;
  const surface: HttpSurface = {
    gw,
    keys,
    authenticator,
    tenants: registry,
    api,
    ...(maxBodyBytes !== undefined ? { maxBodyBytes } : {}),
    ...(consoleAssets ? { console: consoleAssets } : {}),
    ...(pusherApi ? { pusher: pusherApi } : {}),
    ...(fallback ? { fallback } : {}),
  };
  const revocationSweep = setInterval(() => {
    registry.sweepRevocations().catch((err: unknown) => logger.warn({ err }, "revocation sweep failed"));
  }, 60_000);
  revocationSweep.unref();
  // Control messages are at-most-once (NATS core): a node that missed one while NATS was away catches up here.
  const resync = control.clustered
    ? setInterval(() => {
        void (async () => {
          await ready;
          for (const tenant of await registry.sync()) {
            admin.applyStatus(tenant);
            gw.applyRevocations(tenant, registry.revocations(tenant));
          }
          await layered?.load();
        })().catch((err: unknown) => logger.warn({ err }, "tenant resync failed"));
      }, RESYNC_MS)
    : undefined;
  resync?.unref();
  const tenantOfKey = new Map<RoomKey, string>();

  let httpServer: Server | undefined;
  const attached = new Map<Server, (req: IncomingMessage, socket: Duplex, head: Buffer) => void>();
  let closing: Promise<void> | undefined;

  function wsPathOf(req: IncomingMessage): boolean {
    const url = req.url ?? "/";
    const q = url.indexOf("?");
    return (q < 0 ? url : url.slice(0, q)) === gw.path;
  }

  const server: ArqonServer = {
    attach(target) {
      if (attached.has(target)) return;
      const listener = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
        if (wsPathOf(req)) return gw.handleUpgrade(req, socket, head);
        if (pusher?.matches(req.url ?? "/")) return pusher.handleUpgrade(req, socket, head);
        // Leave other paths to the application's own upgrade handlers; answer 404 when there are none.
        if (target.listenerCount("upgrade") === 1) rejectUpgrade(socket, 404, ErrorCode.NOT_FOUND, "no WebSocket endpoint here");
      };
      attached.set(target, listener);
      target.on("upgrade", listener);
    },
    handleUpgrade(req, socket, head) {
      if (pusher?.matches(req.url ?? "/")) return pusher.handleUpgrade(req, socket, head);
      gw.handleUpgrade(req, socket, head);
    },
    handleRequest(req, res) {
      return handleHttp(surface, req, res);
    },
    async listen(port = options.port ?? DEFAULT_PORT, host = options.host ?? "127.0.0.1") {
      if (httpServer) throw new Error("already listening");
      await ready;
      const http = options.http ?? {};
      const headersTimeout = http.headersTimeoutMs ?? 10_000;
      const s = createServer({
        headersTimeout,
        requestTimeout: Math.max(http.requestTimeoutMs ?? 30_000, headersTimeout),
        keepAliveTimeout: http.keepAliveTimeoutMs ?? 5_000,
        // Node enforces the two timeouts on this interval (30 s by default), which would let a slow handshake live
        // far past headersTimeout.
        connectionsCheckingInterval: Math.max(100, Math.min(1000, Math.floor(headersTimeout / 2))),
      });
      // Node drops headers past maxHeadersCount silently; keep one more than our limit so the excess is seen and refused.
      s.maxHeadersCount = limits.maxHeaderCount + 1;
      s.on("request", (req: IncomingMessage, res: ServerResponse) => {
        if (req.rawHeaders.length / 2 > limits.maxHeaderCount) {
          sendError(res, 431, ErrorCode.HEADER_INVALID, `more than ${limits.maxHeaderCount} request headers`, { connection: "close" });
          return;
        }
        handleHttp(surface, req, res).then(
          (handled) => {
            if (!handled) sendError(res, 404, ErrorCode.NOT_FOUND, "not found");
          },
          (err: unknown) => {
            logger.error({ err }, "http handler failed");
            if (!res.headersSent) sendError(res, 500, ErrorCode.INTERNAL, "internal error");
            else res.destroy();
          },
        );
      });
      s.on("clientError", (err: Error & { code?: string }, socket: Duplex) => {
        if (socket.writable && err.code === "ERR_HTTP_REQUEST_TIMEOUT") {
          socket.end("HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
          return;
        }
        if (!socket.writable || !isHttpParserError(err)) {
          socket.destroy();
          return;
        }
        const tooLarge = err.code === "HPE_HEADER_OVERFLOW";
        const status = tooLarge ? 431 : 400;
        const body = tooLarge
          ? errorBody(ErrorCode.HEADER_INVALID, "request headers too large")
          : errorBody(ErrorCode.HEADER_INVALID, "malformed HTTP request");
        socket.end(
          `HTTP/1.1 ${status} ${tooLarge ? "Request Header Fields Too Large" : "Bad Request"}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
        );
      });
      server.attach(s);
      await new Promise<void>((resolve, reject) => {
        s.once("error", reject);
        s.listen(port, host, () => {
          s.off("error", reject);
          resolve();
        });
      });
      s.on("error", (err) => logger.error({ err }, "http server error"));
      httpServer = s;
      const address = s.address() as AddressInfo;
      logger.info({ address: address.address, port: address.port, path: gw.path }, "listening");
      return address;
    },
    publish(tenant, room, payload, publishOptions = {}) {
      const binary = payload instanceof Uint8Array;
      const format: PayloadFormat | undefined = binary ? "binary" : undefined;
      return serverPublish(gw.ctx, tenant, room, binary ? payload : jsonBytes(payload), {
        payloadFormat: format,
        headers: publishOptions.headers,
        idempotencyKey: publishOptions.idempotencyKey,
        sender: publishOptions.sender ?? "server",
        path: publishOptions.path,
      });
    },
    async subscribe(tenant, room, handler) {
      if (!isValidTenant(tenant)) throw new ArqonError(ErrorCode.TENANT_INVALID, "tenant must be 1-64 characters of letters, digits, _ and -");
      const problem = roomNameProblem(room);
      if (problem) throw new ArqonError(ErrorCode.ROOM_INVALID, problem);
      const key = roomKey(tenant, room);
      const listener = (frame: Frame) => handler(frame);
      const { room: local, created } = gw.fanout.addListener(key, tenant, room, listener);
      if (created) {
        local.ready = gw.backends.bus.subscribe(key);
        gw.presenceManager.roomCreated(key, room);
      }
      try {
        await local.ready;
      } catch (err) {
        if (gw.fanout.removeListener(key, listener)) gw.presenceManager.roomDropped(key);
        throw new ArqonError(ErrorCode.BACKEND_UNAVAILABLE, "could not subscribe on the bus", { cause: err });
      }
      let active = true;
      return async () => {
        if (!active) return;
        active = false;
        if (gw.fanout.removeListener(key, listener)) {
          gw.presenceManager.roomDropped(key);
          await gw.backends.bus.unsubscribe(key);
        }
      };
    },
    close() {
      closing ??= (async () => {
        gw.shuttingDown = true;
        const listening = httpServer;
        const serverClosed = listening ? new Promise<void>((resolve) => listening.close(() => resolve())) : Promise.resolve();
        listening?.closeIdleConnections();
        await Promise.all([gw.shutdown(options.shutdownTimeoutMs ?? 5000), pusher?.close(options.shutdownTimeoutMs ?? 5000)]);
        clearInterval(revocationSweep);
        clearInterval(resync);
        fallback?.close();
        admin.close();
        subscriptions.close();
        await cluster.close();
        control.close();
        await quota.close().catch((err: unknown) => logger.warn({ err }, "could not give back connection leases"));
        await layered?.close();
        for (const [target, listener] of attached) target.off("upgrade", listener);
        attached.clear();
        listening?.closeAllConnections();
        await serverClosed;
        const results = await Promise.allSettled(owned.map((b) => b.close()));
        for (const r of results) if (r.status === "rejected") logger.warn({ err: r.reason }, "backend close failed");
        logger.info("closed");
      })();
      return closing;
    },
    get address() {
      const a = httpServer?.address();
      return a && typeof a === "object" ? a : null;
    },
    get url() {
      const a = server.address;
      if (!a) return undefined;
      const host = a.family === "IPv6" ? `[${a.address}]` : a.address;
      return `ws://${host}:${a.port}${gw.path}`;
    },
    registerCommand(name, handler, commandOptions) {
      return commands.register(name, handler, commandOptions);
    },
    commands,
    bus: backends.bus,
    controlPlane: backends.controlPlane,
    history: backends.history,
    presence: backends.presence,
    state: backends.state,
    kv: backends.kv,
    get inspector() {
      return gw.inspector;
    },
    set inspector(value: Inspector) {
      gw.inspector = value;
    },
    metrics: metrics.registry,
    meter: metrics.meter,
    tracer: gw.tracing?.tracer,
    logger,
    status() {
      return statusOf(gw, true);
    },
    get connectionCount() {
      return gw.connections.size;
    },
    ready,
    tenants: registry,
    admin,
    audit,
    control,
    casil: layered,
    tenantLimits: (tenant) => registry.runtime(tenant).limits,
    chargeUsage,
    historyRetention(key, base = {}) {
      if (isAuditKey(key)) return AUDIT_RETENTION;
      let tenant = tenantOfKey.get(key);
      if (tenant === undefined) {
        try {
          tenant = parseRoomKey(key).tenant;
        } catch {
          return base;
        }
        if (tenantOfKey.size >= 10_000) tenantOfKey.clear();
        tenantOfKey.set(key, tenant);
      }
      const l = registry.runtime(tenant).limits;
      const out: RetentionPolicy = { ...base };
      if (l.historyRetentionMs) out.maxAgeMs = l.historyRetentionMs;
      if (l.historyMaxMessages) out.maxMessages = l.historyMaxMessages;
      if (l.historyMaxBytes) out.maxBytes = base.maxBytes ? Math.min(base.maxBytes, l.historyMaxBytes) : l.historyMaxBytes;
      return out;
    },
    onTenantRemoved(listener) {
      removedListeners.add(listener);
      return () => removedListeners.delete(listener);
    },
    readHistory(tenant, room, query) {
      if (!isValidTenant(tenant)) throw new ArqonError(ErrorCode.TENANT_INVALID, "tenant must be 1-64 characters of letters, digits, _ and -");
      const problem = roomNameProblem(room);
      if (problem) throw new ArqonError(ErrorCode.ROOM_INVALID, problem);
      return backends.history.read(roomKey(tenant, room), query);
    },
    outbound,
    nodeId,
    clustered: control.clustered,
    addApiRoutes(routes) {
      api.add(routes);
    },
    apiRoutes: () => api.list(),
  };
  return server;
}
