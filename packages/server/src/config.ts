import type { FallbackOptions } from "./fallback.js";
import type { TracingOptions } from "./tracing.js";
import type { Logger } from "pino";
import type { Bus, ControlPlane, HistoryStore, Inspector, KeyValueStore, Limits, PresenceStore, RoomStateStore } from "@arqon/core";
import type { AuthOptions } from "./auth.js";
import type { ApiRateLimitOptions } from "./api-rate-limit.js";
import type { CasilController } from "./casil/controller.js";
import type { OutboundOptions } from "./outbound.js";
import type { ProxyOptions } from "./proxy-config.js";
import type { PusherOptions } from "./pusher/config.js";
import type { TenancyMode, TenantLimits } from "./tenants.js";

/** The port `arqon serve` listens on when none is configured. */
export const DEFAULT_PORT = 9100;

/** The path of the WebSocket endpoint. */
export const WS_PATH = "/ws";

/** Subprotocol names: the outbound codec of a connection. The token may ride along as `bearer.<token>`. */
export const SUBPROTOCOL_JSON = "arqon.v1.json";
/** The subprotocol that selects the protobuf (binary) outbound codec. */
export const SUBPROTOCOL_PROTO = "arqon.v1.proto";
/** Prefix of the subprotocol that carries the token (`bearer.<token>`), for clients that cannot set headers. */
export const SUBPROTOCOL_BEARER_PREFIX = "bearer.";

/** Per-connection and per-tenant limits. Every field has a safe default. */
export interface LimitOptions {
  /** Largest inbound WebSocket message; bigger ones close the socket with 1009. @default 1048576 */
  maxFrameBytes?: number;
  /** Largest payload of a publish. @default 1048576 */
  maxPayloadBytes?: number;
  /** Subscriptions per connection. @default 1000 */
  maxSubscriptions?: number;
  /** Sustained publishes per second per connection (token bucket refill). @default 100 */
  publishRatePerSecond?: number;
  /** Publishes a connection may burst above the rate. @default 200 */
  publishBurst?: number;
  /** Rate-limit rejections within `abuseWindowMs` after which the connection is closed (4002). @default 50 */
  abuseThreshold?: number;
  /** @default 10000 */
  abuseWindowMs?: number;
  /** Interval of WebSocket-level pings. @default 25000 */
  pingIntervalMs?: number;
  /** A connection that does not answer a ping within this time is dropped (presence leave follows). @default 10000 */
  pongTimeoutMs?: number;
  /** Size of a connection's presence metadata (UTF-8 JSON). @default 4096 */
  maxPresenceInfoBytes?: number;
  /** Bytes queued for one socket (ours plus the kernel-side write buffer) before it is closed as a slow consumer (4000). @default 4194304 */
  maxPendingBytes?: number;
  /**
   * How long a connection closed as a slow consumer (4000) may take to finish closing before its socket is destroyed:
   * a reader that catches up within it reads the 4000 close frame, one that does not sees the connection drop (1006).
   * Short, because the socket's unread backlog (up to `maxPendingBytes`) stays in memory until then. @default 200
   */
  slowConsumerCloseMs?: number;
  /** Inbound frames queued for processing per connection before it is closed (4002). @default 1024 */
  maxInboundQueue?: number;
  /** Connections from one IP address (HTTP 429 beyond). @default 1000 */
  maxConnectionsPerIp?: number;
  /** Connections per tenant (HTTP 429 beyond). @default 100000 */
  maxConnectionsPerTenant?: number;
  /** Connections in total (HTTP 503 beyond). @default 100000 */
  maxConnections?: number;
  /** Sustained publishes per second per tenant, all connections together; 0 = unbounded. @default 0 */
  tenantPublishRatePerSecond?: number;
  /** @default 2 × tenantPublishRatePerSecond */
  tenantPublishBurst?: number;
  /** HTTP request headers of one upgrade or request (HTTP 431 beyond). @default 100 */
  maxHeaderCount?: number;
  /** Messages replayed on a subscribe with `since`. @default 1000 */
  maxRecoveryMessages?: number;
  /** Largest `limit` of a history read. @default 1000 */
  maxHistoryPage?: number;
  /** How long a publish's idempotency key is remembered (a repeat within it is acked, not delivered again). @default 120000 */
  dedupeWindowMs?: number;
}

/** How presence is kept and announced (`ArqonServerOptions.presenceOptions`). */
export interface PresenceOptions {
  /**
   * Churn window. The first change in a quiet room is sent at once as presence_join/presence_leave; further changes
   * within this window are gathered and sent as one presence_diff when it ends. 0 sends every change on its own.
   * @default 100
   */
  coalesceMs?: number;
  /** Present one entry per user (`userId`, with a `connections` count) instead of one per connection. @default false */
  perUser?: boolean;
  /**
   * Rooms without presence (patterns as in token caps: "feed/*", "*"). A subscriber of such a room is not entered
   * in the presence store, no join/leave events are sent in it, `subscribed` carries no member list, and
   * `presence`/`presence_set` answer ARQ_PRESENCE_DISABLED. For broadcast rooms with many subscribers (tickers,
   * feeds, announcements) where nobody reads the member list, this removes a store write per subscribe, the
   * member entry every node mirrors, and the leave on disconnect. @default [] (presence in every room)
   */
  disabledRooms?: string[];
}

/** Options of `createArqonServer`. Only `auth` is required. */
export interface ArqonServerOptions {
  /** Token verification. Required: there is no anonymous mode. */
  auth: AuthOptions;
  /** @default "/ws" */
  path?: string;
  /** Port `listen()` uses when called without one. @default 9100 */
  port?: number;
  /** Host `listen()` binds when called without one. @default "127.0.0.1" */
  host?: string;
  /** Per-connection and per-tenant limits; each field unset takes its default (see `LimitOptions`). */
  limits?: LimitOptions;
  /**
   * Keys of the operator, the people who run the server (each at least 24 characters; compared in constant time,
   * never logged). They authenticate the server HTTP API (`Authorization: Bearer <key>` or `X-API-Key`): tenants,
   * limits, the CASIL baseline, kick, revoke. A token is never an operator, whatever its claims. Without any key the
   * operator API answers 401. @default []
   */
  operatorKeys?: string[];
  /** Tokens that may read `/status` and `/metrics` only (a Prometheus scrape). @default [] */
  scrapeTokens?: string[];
  /**
   * "open": any valid tenant claim may connect; "registered": only tenants the operator created (others get HTTP
   * 403 ARQ_TENANT_UNKNOWN before the upgrade). @default "open"
   */
  tenancy?: TenancyMode;
  /** Limits of every tenant unless its record or `tenantLimits` says otherwise (see `TenantLimits` for the built-in defaults). */
  tenantDefaults?: TenantLimits;
  /** Per-tenant limits from configuration, by tenant id (a tenant record's own limits win over them). */
  tenantLimits?: Record<string, TenantLimits>;
  /**
   * Signs and verifies the control-plane messages nodes send each other (tenant changes, kicks, revocations, CASIL
   * reloads); at least 32 bytes, the same on every node. @default derived from `auth.secret` (required with a
   * `controlPlane` when tokens are verified with public keys)
   */
  clusterKey?: string | Uint8Array;
  /**
   * What server-side requests (webhook deliveries, proxy hooks) may reach: public HTTPS by default; `allow` lists
   * internal hosts and CIDRs, `allowHttp` admits http:. See docs/security.md, "Outbound requests".
   */
  outbound?: OutboundOptions;
  /**
   * Proxy hooks: the gateway asks the application backend at connect, subscribe, publish, refresh and rpc (each call
   * through the outbound guard, signed with `secret`). Tenants may have their own (set by the operator). See
   * docs/gateway.md, "Proxy hooks". @default none
   */
  proxy?: ProxyOptions;
  /** Presence coalescing, per-user presence and rooms without presence. */
  presenceOptions?: PresenceOptions;
  /**
   * The Pusher Channels protocol mode (docs/pusher.md): pusher-js on `/app/{key}` and the Pusher HTTP API under
   * `/apps/{appId}/...`, one app (id, key, secret) per tenant. Server configuration only: the operator sets it.
   * @default undefined (off)
   */
  pusher?: PusherOptions;
  /**
   * The fallback transports for clients whose network breaks WebSockets (docs/protocol.md, "Fallback transports"):
   * Server-Sent Events and HTTP streaming under `<path>/sse`, `<path>/send` and `<path>/ticket`. `false` turns them off.
   * @default true
   */
  fallback?: boolean | FallbackOptions;
  /**
   * Allowed `Origin` values (exact, e.g. "https://app.example.com", or "*"). A browser upgrade from any other origin
   * is refused with 403 ARQ_ORIGIN_FORBIDDEN; requests without an Origin header (non-browser clients) are allowed.
   * @default undefined (every origin)
   */
  allowedOrigins?: string[];
  /** permessage-deflate; off unless enabled. @default false */
  perMessageDeflate?:
    | boolean
    | {
        /** Outbound messages smaller than this many bytes are sent uncompressed. @default 1024 */
        threshold?: number;
      };
  /** Backends; each defaults to the in-memory implementation from @arqon/core. */
  bus?: Bus;
  /**
   * The channel nodes of a cluster send each other control messages on (e.g. NATS). Without one the server is a
   * single node (`clustered` is false) and there is no in-memory default.
   */
  controlPlane?: ControlPlane;
  /** Room history (acks, recovery with `since`, history reads, the audit trail). @default a MemoryHistoryStore */
  history?: HistoryStore;
  /** Room member lists. @default a MemoryPresenceStore */
  presence?: PresenceStore;
  /** Room state (the state frames). @default a MemoryRoomStateStore */
  state?: RoomStateStore;
  /**
   * Key-value store of the server's own records (tenants, revocations, rooms, usage counters, connection leases in a
   * cluster, CASIL layers) and of command handlers (`CommandContext.kv`, op.store). @default a MemoryKeyValueStore
   */
  kv?: KeyValueStore;
  /** The CASIL hook, called on every inbound content path. @default allowAll */
  inspector?: Inspector;
  /**
   * CASIL with tenant layers: the controller holds the operator's baseline; the server adds one layer per tenant
   * (kept in `kv`, shared by every node), serves `op.casil.get` / `op.casil.reload` to tenant admins and the CASIL
   * routes of the server API, carries reloads to the other nodes, and exposes the counters on `/metrics`. Replaces
   * `inspector` (give one or the other). The server closes the controller.
   */
  casil?: CasilController;
  /**
   * The web console at `/console` (docs/console.md): off unless set. `true` serves the build shipped inside this
   * package; `{ dir }` serves the build in that directory instead. Sign-in uses operator keys and tenant admin
   * tokens, as the server API does. @default false
   */
  console?:
    | boolean
    | {
        /** A directory holding a console build (what `scripts/build-console.mjs` writes). */
        dir: string;
      };
  /** A pino logger. @default pino at level "info" (or ARQON_LOG_LEVEL) */
  logger?: Logger;
  /** Server version reported in welcome and /version. @default the @arqon/server package version */
  version?: string;
  /** Time `close()` waits for sockets to finish their closing handshake before cutting them. @default 5000 */
  shutdownTimeoutMs?: number;
  /** Node-level HTTP timeouts for `listen()`. @default { headersTimeoutMs: 10000, requestTimeoutMs: 30000 } */
  http?: {
    /** Time a client has to send the complete request headers (Node's `headersTimeout`). @default 10000 */
    headersTimeoutMs?: number;
    /**
     * Time a client has to send a whole request (Node's `requestTimeout`; never below headersTimeoutMs).
     * @default 30000
     */
    requestTimeoutMs?: number;
    /** How long an idle keep-alive connection is kept open (Node's `keepAliveTimeout`). @default 5000 */
    keepAliveTimeoutMs?: number;
    /**
     * The largest request body any HTTP endpoint reads (POST /api/publish and the server API, /api/v1/*); a larger
     * one is refused with 413 `ARQ_PAYLOAD_TOO_LARGE` and not parsed. Unset, each endpoint keeps its own bound:
     * POST /api/publish 2 × `limits.maxPayloadBytes` + 64 KiB (room for a base64 payload of the largest size),
     * the server API 1 MiB. A whole number of bytes above 0.
     * @default unset (2 × maxPayloadBytes + 64 KiB for /api/publish, 1048576 for the server API)
     */
    maxBodyBytes?: number;
    /**
     * A token bucket per credential on every server API route (`/api/v1/*`): per operator key, per token (tenant and
     * `sub`) and per scrape token. Past it a request gets 429 `ARQ_RATE_LIMITED` with `Retry-After` (seconds).
     * `perSecond: 0` turns it off.
     * @default { perSecond: 200, burst: 400, maxKeys: 10000 }
     */
    apiRateLimit?: ApiRateLimitOptions;
  };
  /**
   * OpenTelemetry traces (docs/gateway.md, "Traces"): spans for upgrades, publishes (with CASIL and the history
   * append), deliveries on every node and server API calls, with the W3C trace context carried in the message's
   * `traceparent` header. `true` uses the global tracer provider (register one, e.g. the OpenTelemetry Node SDK's);
   * `{ tracerProvider }` names one. Off, nothing is traced and the message headers pass through as sent.
   * @default false
   */
  tracing?: boolean | TracingOptions;
  /** Collect Node process metrics into the registry too. @default true */
  processMetrics?: boolean;
  /** The Prometheus metrics on `/metrics`. */
  metrics?: {
    /**
     * Tenants that get a `tenant` label value of their own, first come (docs/gateway.md, "Metrics"); every later
     * tenant is counted under `tenant="_other"`, so a server with many tenants keeps a bounded number of series.
     * @default 100
     */
    maxTenantLabels?: number;
  };
  /**
   * What GET /status reports under `storage` (whoever opened the stores says what they are, e.g. `arqon serve`:
   * `{ backend: "lmdb", durable: true }`). @default { backend: "memory", durable: false } when the history store is
   * the in-memory default, else the history store's class name
   */
  storageStatus?: {
    /** The storage backend's name, e.g. "lmdb" or "memory". */
    backend: string;
    /** Whether data survives a restart. */
    durable: boolean;
  };
  /**
   * The state of an external backend connection (NATS). /status shows it; while it is not "connected" the node
   * reports degraded: /health says "degraded" (still 200), /ready answers 503, and publishes fail with
   * ARQ_BACKEND_UNAVAILABLE (the stores refuse them).
   */
  backendStatus?: () => {
    /** The backend's name, e.g. "nats". */
    name: string;
    /** The connection's state; anything but "connected" makes the node degraded. */
    state: "connected" | "reconnecting" | "closed";
    /** Extra facts /status shows with it (under `cluster`). */
    detail?: Record<string, unknown>;
  };
}

/** `LimitOptions` with every default filled in (what `resolveLimits` returns). */
export type ResolvedLimits = Required<Omit<LimitOptions, "tenantPublishBurst">> & {
  /** Publishes a tenant may burst above its rate: the configured value, else 2 × `tenantPublishRatePerSecond`. */
  tenantPublishBurst: number;
};

/** Fills in the default of every limit not given (the defaults are listed on `LimitOptions`). Does not validate. */
export function resolveLimits(limits: LimitOptions = {}): ResolvedLimits {
  const tenantRate = limits.tenantPublishRatePerSecond ?? 0;
  return {
    maxFrameBytes: limits.maxFrameBytes ?? 1024 * 1024,
    maxPayloadBytes: limits.maxPayloadBytes ?? 1024 * 1024,
    maxSubscriptions: limits.maxSubscriptions ?? 1000,
    publishRatePerSecond: limits.publishRatePerSecond ?? 100,
    publishBurst: limits.publishBurst ?? 200,
    abuseThreshold: limits.abuseThreshold ?? 50,
    abuseWindowMs: limits.abuseWindowMs ?? 10_000,
    pingIntervalMs: limits.pingIntervalMs ?? 25_000,
    pongTimeoutMs: limits.pongTimeoutMs ?? 10_000,
    maxPresenceInfoBytes: limits.maxPresenceInfoBytes ?? 4096,
    maxPendingBytes: limits.maxPendingBytes ?? 4 * 1024 * 1024,
    slowConsumerCloseMs: limits.slowConsumerCloseMs ?? 200,
    maxInboundQueue: limits.maxInboundQueue ?? 1024,
    maxConnectionsPerIp: limits.maxConnectionsPerIp ?? 1000,
    maxConnectionsPerTenant: limits.maxConnectionsPerTenant ?? 100_000,
    maxConnections: limits.maxConnections ?? 100_000,
    tenantPublishRatePerSecond: tenantRate,
    tenantPublishBurst: limits.tenantPublishBurst ?? tenantRate * 2,
    maxHeaderCount: limits.maxHeaderCount ?? 100,
    maxRecoveryMessages: limits.maxRecoveryMessages ?? 1000,
    maxHistoryPage: limits.maxHistoryPage ?? 1000,
    dedupeWindowMs: limits.dedupeWindowMs ?? 120_000,
  };
}

/** The limits a client is told about in `welcome`. */
export function wireLimits(l: ResolvedLimits): Limits {
  return {
    maxPayloadBytes: l.maxPayloadBytes,
    maxFrameBytes: l.maxFrameBytes,
    maxSubscriptions: l.maxSubscriptions,
    publishRatePerSecond: l.publishRatePerSecond,
    publishBurst: l.publishBurst,
    pingIntervalMs: l.pingIntervalMs,
    pongTimeoutMs: l.pongTimeoutMs,
    maxPresenceInfoBytes: l.maxPresenceInfoBytes,
    maxPendingBytes: l.maxPendingBytes,
  };
}
