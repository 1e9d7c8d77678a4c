import type { Frame, KeyValueStore } from "@arqon/core";

/** The tenant limits operators apply (a structural subset of @arqon/server's ResolvedTenantLimits). */
export interface OperatorTenantLimits {
  maxMessageBytes: number;
  maxCronJobs: number;
  cronRatePerSecond: number;
  maxWebhooks: number;
  webhookQueueBytes: number;
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
  /** The limits of a tenant, when the host has tenants. */
  tenantLimits?(tenant: string): OperatorTenantLimits;
  /** Calls `listener` on every node when a tenant is deleted: operators drop its schedules, hooks and stored entries. */
  onTenantRemoved?(listener: (tenant: string) => void | Promise<void>): () => void;
}

export interface Operator {
  /** Stops timers and subscriptions; registered commands are removed. */
  close(): Promise<void>;
}
