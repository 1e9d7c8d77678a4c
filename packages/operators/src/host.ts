import type { Frame, HistoryPage, HistoryQuery, KeyValueStore } from "@arqon/core";

/** The tenant limits operators apply (a structural subset of @arqon/server's ResolvedTenantLimits). */
export interface OperatorTenantLimits {
  maxMessageBytes: number;
  maxCronJobs: number;
  cronRatePerSecond: number;
  maxWebhooks: number;
}

/** The server's outbound guard, as operators use it (a structural subset of @arqon/server's OutboundGuard). */
export interface OperatorOutbound {
  /** Checks a target (form, then every address its name resolves to); rejects with ARQ_OUTBOUND_FORBIDDEN. */
  check(url: string): Promise<unknown>;
  /** Sends one request through the guard; rejects with an error carrying `failure` (a class) when there is no answer. */
  request(
    url: string,
    init: { method?: string; headers?: Record<string, string>; body?: string | Uint8Array; timeoutMs?: number },
  ): Promise<{ status: number; body: Uint8Array }>;
}

/** A usage charge (op.store keys and bytes); the host refuses one past the tenant's limits with ARQ_QUOTA_EXCEEDED. */
export interface OperatorUsageDelta {
  storeKeys?: number;
  storeBytes?: number;
}

/** What a command handler is told about its caller (a structural subset of @arqon/server's CommandContext). */
export interface OperatorCommandContext {
  command: string;
  args: unknown;
  tenant: string;
  sub: string;
  admin: boolean;
  room?: string;
  /** The caller's tenant limits, when the host has tenants. */
  limits?: OperatorTenantLimits;
  /** Charges the caller's tenant usage, when the host counts it. */
  chargeUsage?(delta: OperatorUsageDelta): Promise<unknown>;
}

/**
 * Who may run a command: every member of the tenant, its admins, or tokens whose capability covers the resource the
 * command touches (the host checks it before the handler runs).
 */
export type OperatorAccess = "member" | "admin" | { capability: "sub" | "pub" | "presence" | "store"; resource: "room" | ((args: Record<string, unknown>) => unknown) };

export interface OperatorCommandOptions {
  access?: OperatorAccess;
  /** @deprecated use `access: "admin"` */
  adminOnly?: boolean;
  /** Audit every call (default: admin commands). */
  audit?: boolean;
  description?: string;
  /** Argument fields CASIL does not inspect (a designated secret the caller supplies, e.g. a webhook's signing secret). */
  trustedFields?: readonly string[];
}

export type OperatorHandler = (ctx: OperatorCommandContext) => unknown;

export interface OperatorPublishResult {
  id?: string;
  offset: number;
  epoch: string;
}

/**
 * The part of a gateway operators use. `ArqonServer` from @arqon/server satisfies it; operators never import the
 * server package (arrows point one way), so anything with this shape can host them.
 */
export interface OperatorHost {
  registerCommand(name: string, handler: OperatorHandler, options?: OperatorCommandOptions): () => void;
  readonly commands: { disable(name: string, reason?: string): void };
  /** Publishes as an operator; the host inspects it with CASIL (path "operator") before it is stored or delivered. */
  publish(
    tenant: string,
    room: string,
    payload: unknown,
    options?: { headers?: Record<string, string>; sender?: string; path?: "operator" },
  ): Promise<OperatorPublishResult>;
  readonly kv: KeyValueStore;
  /** Server-side room subscription (messages only); needed by op.webhook. */
  subscribe?(tenant: string, room: string, handler: (frame: Frame) => void): Promise<() => Promise<void>>;
  /** Reads a page of a tenant's room history; op.webhook delivers from it, so a delivery survives a crash. */
  readHistory?(tenant: string, room: string, query: HistoryQuery): Promise<HistoryPage>;
  /** The guard every server-side request goes through (op.webhook never calls fetch itself). */
  readonly outbound?: OperatorOutbound;
  /** This node's id: who holds a lease (one cron runner, one deliverer per webhook, per cluster). */
  readonly nodeId?: string;
  /** Whether other nodes share this host's stores (NATS); false: one process, leases are not needed. */
  readonly clustered?: boolean;
  /** The operator's log: failure details that tenants must not see (they get a failure class). */
  readonly logger?: { warn(obj: object, msg?: string): void; info(obj: object, msg?: string): void };
  /** The limits of a tenant, when the host has tenants. */
  tenantLimits?(tenant: string): OperatorTenantLimits;
  /** Calls `listener` on every node when a tenant is deleted: operators drop its schedules, hooks and stored entries. */
  onTenantRemoved?(listener: (tenant: string) => void | Promise<void>): () => void;
}

export interface Operator {
  /** Stops timers and subscriptions; registered commands are removed. */
  close(): Promise<void>;
}
