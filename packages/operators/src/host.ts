import type { Tracer } from "@opentelemetry/api";
import type { Frame, HistoryPage, HistoryQuery, KeyValueStore } from "@arqon/core";

/** The tenant limits operators apply (a structural subset of @arqon/server's ResolvedTenantLimits). */
export interface OperatorTenantLimits {
  /** Largest payload of one message, in bytes; op.cron also applies it to a schedule's payload. */
  maxMessageBytes: number;
  /** op.cron schedules the tenant may have. */
  maxCronJobs: number;
  /** Scheduled publishes per second, all the tenant's schedules together (each counted at its fastest rate). */
  cronRatePerSecond: number;
  /** op.webhook hooks the tenant may have. */
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
  /** Change of the tenant's op.store key count; negative to release. */
  storeKeys?: number;
  /** Change of the bytes of the tenant's op.store values; negative to release. */
  storeBytes?: number;
}

/** What a command handler is told about its caller (a structural subset of @arqon/server's CommandContext). */
export interface OperatorCommandContext {
  /** The full command name, e.g. "op.store.get". */
  command: string;
  /** The parsed JSON arguments (undefined when none were sent). */
  args: unknown;
  /** The caller's tenant. */
  tenant: string;
  /** The caller's `sub` claim. */
  sub: string;
  /** Whether the caller is a tenant admin (`role: "admin"`). */
  admin: boolean;
  /** The `room` of the command frame, when it names one. */
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
export type OperatorAccess =
  | "member"
  | "admin"
  | {
      /** The capability the caller's token needs for the resource. */
      capability: "sub" | "pub" | "presence" | "store";
      /**
       * The resource checked: "room" (`args.room`, else the command frame's `room`), or a function that picks it from
       * the arguments (e.g. a store namespace).
       */
      resource: "room" | ((args: Record<string, unknown>) => unknown);
    };

/** How a command is registered (a structural subset of @arqon/server's CommandOptions). */
export interface OperatorCommandOptions {
  /**
   * Who may run it; the host checks it before the handler runs and answers others with AUTHORIZATION_ERROR.
   * @default "member", or "admin" with `adminOnly`
   */
  access?: OperatorAccess;
  /** @deprecated use `access: "admin"` */
  adminOnly?: boolean;
  /** Audit every call (default: admin commands). */
  audit?: boolean;
  /** A one-line summary of the command and its arguments, shown where commands are listed. */
  description?: string;
  /** Argument fields CASIL does not inspect (a designated secret the caller supplies, e.g. a webhook's signing secret). */
  trustedFields?: readonly string[];
}

/**
 * A command handler: returns (or resolves with) the response payload, any JSON value or undefined for none, or throws
 * an ArqonError whose code becomes the response's error code; the host reports anything else thrown as INTERNAL_ERROR.
 */
export type OperatorHandler = (ctx: OperatorCommandContext) => unknown;

/** What `OperatorHost.publish` resolves with. */
export interface OperatorPublishResult {
  /** The message's id, when the host reports it. */
  id?: string;
  /** The message's offset in the room's history. */
  offset: number;
  /** The epoch of the room's history that `offset` belongs to. */
  epoch: string;
}

/**
 * Prometheus metrics an operator may add to its host's registry (`/metrics`). Names start with `arqon_`; a name asked
 * for twice (an operator restarted) gets the same metric.
 */
export interface OperatorMeter {
  /** A counter with the given labels. */
  counter(
    name: string,
    help: string,
    labelNames: string[],
  ): {
    /** Adds `by` (default 1) to the series of `labels`. */
    inc(labels: Record<string, string>, by?: number): void;
  };
  /** A gauge whose series `collect` lists at each scrape (the latest `collect` given for a name is the one used). */
  gauge(name: string, help: string, labelNames: string[], collect: () => Array<[labels: Record<string, string>, value: number]>): void;
  /** The `tenant` label value of a tenant: the host bounds how many tenants get one of their own. */
  tenant(tenant: string): string;
}

/**
 * The part of a gateway operators use. `ArqonServer` from @arqon/server satisfies it; operators never import the
 * server package (arrows point one way), so anything with this shape can host them.
 */
export interface OperatorHost {
  /**
   * Registers a command (`op.<name>.<verb>`) that clients run with `command` frames; returns a function that removes
   * it. Throws VALIDATION_ERROR for a malformed or already registered name.
   */
  registerCommand(name: string, handler: OperatorHandler, options?: OperatorCommandOptions): () => void;
  /** The host's command registry. */
  readonly commands: {
    /**
     * Keeps command `name` known but answers it with FEATURE_DISABLED and `reason` (for a feature that is off, or a
     * host that lacks what the operator needs).
     */
    disable(name: string, reason?: string): void;
  };
  /** Publishes as an operator; the host inspects it with CASIL (path "operator") before it is stored or delivered. */
  publish(
    tenant: string,
    room: string,
    payload: unknown,
    options?: { headers?: Record<string, string>; sender?: string; path?: "operator" },
  ): Promise<OperatorPublishResult>;
  /**
   * The host's key-value store, shared by every tenant (and, clustered, every node): operators scope their keys by
   * tenant themselves.
   */
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
  readonly logger?: {
    /** Logs a warning: structured fields, then an optional message (pino's argument order). */
    warn(obj: object, msg?: string): void;
    /** Logs an informational line: structured fields, then an optional message. */
    info(obj: object, msg?: string): void;
  };
  /** Metrics on the host's `/metrics`; an operator without one counts nothing. */
  readonly meter?: OperatorMeter;
  /** The host's tracer while it traces (OpenTelemetry); an operator without one makes no spans. */
  readonly tracer?: Tracer;
  /** The limits of a tenant, when the host has tenants. */
  tenantLimits?(tenant: string): OperatorTenantLimits;
  /** Calls `listener` on every node when a tenant is deleted: operators drop its schedules, hooks and stored entries. */
  onTenantRemoved?(listener: (tenant: string) => void | Promise<void>): () => void;
}

/** A running operator, as its factory returns it. */
export interface Operator {
  /** Stops timers and subscriptions; registered commands are removed. */
  close(): Promise<void>;
}
