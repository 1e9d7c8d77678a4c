import type { Bus, ControlPlane, HistoryStore, InspectionInput, KeyValueStore, PresenceStore, RoomStateStore } from "@arqon/core";
import type { Logger } from "pino";
import type { ResolvedLimits } from "./config.js";
import type { Connection } from "./connection.js";
import type { Fanout } from "./fanout.js";
import type { Inspected } from "./inspect.js";
import type { ServerMetrics } from "./metrics.js";
import type { PresenceManager } from "./presence.js";
import type { ProxyHooks } from "./proxy.js";
import type { RoomRegistry } from "./quota.js";
import type { TenantRegistry } from "./tenants.js";
import type { Tracing } from "./tracing.js";

/** The stores and the bus a server runs on. */
export interface Backends {
  bus: Bus;
  controlPlane?: ControlPlane;
  history: HistoryStore;
  presence: PresenceStore;
  state: RoomStateStore;
  kv: KeyValueStore;
}

/** Why a connection ended, for its presence leave and logs. */
export type EndReason =
  | "disconnect"
  | "timeout"
  | "slow_consumer"
  | "expired"
  | "shutdown"
  | "abuse"
  | "kicked"
  | "tenant_disabled"
  | "revoked";

/**
 * What the frame and command handlers may use, and nothing more: the stores and the bus, CASIL, the limits and the
 * tenants' limits, the fan-out, metrics and a way to answer or close a connection. The gateway builds one; handlers
 * never see the gateway itself, so the authority checks (made by the gateway before a handler runs, see
 * authority.ts) stay in one place and a handler cannot reach the connection table, the upgrade path or the command
 * registry.
 */
export interface HandlerContext {
  readonly limits: ResolvedLimits;
  readonly backends: Readonly<Backends>;
  readonly fanout: Fanout;
  readonly presence: PresenceManager;
  readonly tenants: TenantRegistry;
  readonly rooms: RoomRegistry;
  readonly logger: Logger;
  readonly metrics: ServerMetrics;
  /** The proxy hooks' client (the hooks in force for a tenant are on its runtime, `tenants.runtime(t).hooks`). */
  readonly proxy: ProxyHooks;
  /** The tracer's spans, only while tracing is on (`ArqonServerOptions.tracing`); undefined costs nothing. */
  readonly tracing?: Tracing;
  /** Per room, the bus publish of the newest append started on this node (see `inOrder` in rooms.ts). */
  readonly publishOrder: Map<string, Promise<void>>;
  /** Runs CASIL on inbound content (fail closed); a block throws an ArqonError with the reason code. */
  inspect(input: InspectionInput): Inspected | Promise<Inspected>;
  nextMessageId(): string;
  sendError(conn: Connection, requestId: string | undefined, code: string, message: string, retryable?: boolean): void;
  closeConnection(conn: Connection, code: number, message: string, reason: EndReason): void;
}
