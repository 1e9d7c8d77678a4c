import { ArqonError, CloseCode, ErrorCode, type KeyValueStore } from "@arqon/core";
import type { Logger } from "pino";
import { SERVER_AUDIT_TENANT, type AuditActor, type AuditLog } from "./audit.js";
import type { ClusterControl } from "./control.js";
import type { Backends, Gateway } from "./gateway.js";
import type { RoomRegistry, TenantUsage, UsageCounter } from "./quota.js";
import { LEASES_NAMESPACE } from "./quota.js";
import { assertTenantName, type ResolvedTenantLimits, type RevocationRule, type TenantRecord, type TenantRegistry } from "./tenants.js";

/** What `show` answers about one tenant. */
export interface TenantView {
  /** The tenant id. */
  name: string;
  /** "unregistered": no record (open mode); the defaults apply. */
  status: TenantRecord["status"] | "unregistered";
  /** The tenant's record; absent when it has none. */
  record?: TenantRecord;
  /** The limits in force (record over configuration over defaults). */
  limits: ResolvedTenantLimits;
  /** The tenant's usage counters (cluster-wide when the key-value store is shared). */
  usage: TenantUsage;
  /** Open connections of the tenant on the node that answered. */
  connectionsHere: number;
  /** The revocation rules in force. */
  revocations: RevocationRule[];
}

export interface TenantAdminOptions {
  gateway: Gateway;
  registry: TenantRegistry;
  rooms: RoomRegistry;
  usage: UsageCounter;
  control: ClusterControl;
  audit: AuditLog;
  backends: Backends;
  logger: Logger;
  /** Called on every node when a tenant is deleted (operators drop its schedules and hooks there). */
  onRemoved: (tenant: string) => Promise<void>;
  /** Called once, on the node deleting a tenant, to remove stored data other parts own (its CASIL layer). */
  onPurge?: (tenant: string) => Promise<void>;
}

/** Control-plane topics of tenant actions. */
export const TENANT_TOPICS = {
  changed: "tenant.changed",
  deleted: "tenant.deleted",
  kick: "tenant.kick",
  revocations: "tenant.revocations",
  roomsForget: "tenant.rooms.forget",
} as const;

interface KickBody {
  tenant: string;
  user?: string;
  client?: string;
  /** The close code (4000-4999). @default 4504 */
  code?: number;
  /** The close reason. @default "kicked" */
  reason?: string;
}

function optionalText(value: unknown, field: string): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "string" || value.length === 0 || value.length > 256) {
    throw new ArqonError(ErrorCode.VALIDATION_ERROR, `${field} must be a string of 1-256 characters`);
  }
  return value;
}

/**
 * The operator's (and, where docs/security.md says so, a tenant admin's) actions on tenants: records and limits,
 * disable and enable, delete with its data, kick, revoke. Each one applies on this node, tells every other node
 * over the authenticated control plane (they act within milliseconds: connections close, caches refresh), and
 * leaves an audit record whatever its outcome.
 */
export class TenantAdmin {
  private readonly off: Array<() => void> = [];

  constructor(private readonly o: TenantAdminOptions) {
    const { control, registry, gateway, rooms } = o;
    this.off.push(
      control.on(TENANT_TOPICS.changed, async (body) => {
        const { tenant } = body as { tenant: string };
        await registry.refresh(tenant);
        this.applyStatus(tenant);
      }),
      control.on(TENANT_TOPICS.deleted, async (body) => {
        const { tenant } = body as { tenant: string };
        await registry.refresh(tenant);
        rooms.forget(tenant);
        gateway.closeTenantConnections(tenant, () => true, CloseCode.TENANT_DISABLED, "tenant deleted", "tenant_disabled");
        await o.onRemoved(tenant);
      }),
      control.on(TENANT_TOPICS.kick, (body) => {
        this.kickHere(body as KickBody);
      }),
      control.on(TENANT_TOPICS.revocations, async (body) => {
        const { tenant } = body as { tenant: string };
        gateway.applyRevocations(tenant, await registry.refreshRevocations(tenant));
      }),
      control.on(TENANT_TOPICS.roomsForget, (body) => {
        const { tenant, rooms: names } = body as { tenant: string; rooms: string[] };
        rooms.forget(tenant, names);
      }),
    );
  }

  /** Closes (4503) this node's connections of a tenant that may not connect now. */
  applyStatus(tenant: string): number {
    const refusal = this.o.registry.refusal(tenant);
    if (!refusal) return 0;
    const message = refusal.code === ErrorCode.TENANT_DISABLED ? "tenant disabled" : "tenant not registered";
    return this.o.gateway.closeTenantConnections(tenant, () => true, CloseCode.TENANT_DISABLED, message, "tenant_disabled");
  }

  private audited<T>(actor: AuditActor, action: string, tenant: string, run: () => Promise<T>, detail?: (result: T) => Record<string, unknown>): Promise<T> {
    return this.o.audit.track(actor, action, tenant, run, detail);
  }

  private broadcast(topic: string, body: unknown): Promise<void> {
    return this.o.control.send(topic, body).catch((err: unknown) => {
      this.o.logger.error({ err, topic }, "could not tell the cluster");
      throw new ArqonError(ErrorCode.BACKEND_UNAVAILABLE, "the change was made here but could not be sent to the other nodes", { cause: err });
    });
  }

  /** Every tenant record, sorted by name (tenants without a record are not listed). */
  list(): TenantRecord[] {
    return this.o.registry.list();
  }

  /** One tenant: record, limits in force, usage, connections here, revocations. TENANT_INVALID for a bad name. */
  async show(name: string): Promise<TenantView> {
    assertTenantName(name);
    const record = this.o.registry.get(name);
    const runtime = this.o.registry.runtime(name);
    const view: TenantView = {
      name,
      status: record?.status ?? "unregistered",
      limits: runtime.limits,
      usage: await this.o.usage.get(name),
      connectionsHere: this.o.gateway.byTenant.get(name)?.size ?? 0,
      revocations: this.o.registry.revocations(name),
    };
    // A tenant admin may read its record, never its hooks' signing secret.
    if (record) view.record = record.proxy?.secret !== undefined ? { ...record, proxy: { ...record.proxy, secret: "(set)" } } : record;
    return view;
  }

  /**
   * Creates a tenant record (`limits` are validated like `parseTenantLimits`; `disabled` creates it disabled).
   * CONFLICT when the tenant has a record already.
   */
  create(actor: AuditActor, name: string, input: { limits?: unknown; description?: unknown; disabled?: boolean; proxy?: unknown }): Promise<TenantRecord> {
    return this.audited(actor, "tenant.create", name, async () => {
      const record = await this.o.registry.create(name, input);
      this.applyStatus(name);
      await this.broadcast(TENANT_TOPICS.changed, { tenant: name });
      return record;
    });
  }

  /**
   * Changes a tenant's limits (merged into the record's; a field given as null goes back to the default) and its
   * description. NOT_FOUND when the tenant has no record.
   */
  set(actor: AuditActor, name: string, input: { limits?: unknown; description?: unknown; proxy?: unknown }): Promise<TenantRecord> {
    return this.audited(
      actor,
      "tenant.set",
      name,
      async () => {
        const record = await this.o.registry.setLimits(name, input);
        await this.broadcast(TENANT_TOPICS.changed, { tenant: name });
        return record;
      },
      () => (input.proxy !== undefined ? { limits: input.limits ?? {}, proxy: typeof input.proxy === "object" && input.proxy !== null ? Object.keys(input.proxy) : input.proxy } : { limits: input.limits ?? {} }),
    );
  }

  /** Disables a tenant (creating its record when it has none): every connection closes with 4503, upgrades get 403. */
  disable(
    actor: AuditActor,
    name: string,
  ): Promise<{
    /** The record as it is now. */
    record: TenantRecord;
    /** Connections closed on this node (the other nodes close theirs when told). */
    closedHere: number;
  }> {
    return this.audited(
      actor,
      "tenant.disable",
      name,
      async () => {
        const record = this.o.registry.get(name) ? await this.o.registry.setStatus(name, "disabled") : await this.o.registry.create(name, { disabled: true });
        const closedHere = this.applyStatus(name);
        await this.broadcast(TENANT_TOPICS.changed, { tenant: name });
        return { record, closedHere };
      },
      (r) => ({ closedHere: r.closedHere }),
    );
  }

  /** Sets a disabled tenant active again. NOT_FOUND when the tenant has no record. */
  enable(actor: AuditActor, name: string): Promise<TenantRecord> {
    return this.audited(actor, "tenant.enable", name, async () => {
      const record = await this.o.registry.setStatus(name, "active");
      await this.broadcast(TENANT_TOPICS.changed, { tenant: name });
      return record;
    });
  }

  /**
   * Deletes a tenant and its data: history, room state, op.store values, schedules and hooks, the CASIL layer, the
   * room registry, usage counters, revocations, its record. `confirm` must repeat the tenant's name. Connections are
   * closed (4503) on every node first, and upgrades are refused while the data is removed.
   */
  delete(
    actor: AuditActor,
    name: string,
    confirm: unknown,
  ): Promise<{
    /** Rooms whose history was removed (rooms with at least one message). */
    rooms: number;
    /** Rooms whose state was removed (rooms with at least one applied write). */
    stateRooms: number;
    /** op.store keys removed. */
    storeKeys: number;
  }> {
    // The tenant's own trail goes with its history: the server's trail keeps the deletion.
    return this.o.audit.track(
      actor,
      "tenant.delete",
      SERVER_AUDIT_TENANT,
      async () => {
        assertTenantName(name);
        if (confirm !== name) {
          throw new ArqonError(ErrorCode.CONFIRMATION_REQUIRED, `deleting a tenant removes all its data: confirm by repeating its name ("confirm": "${name}")`);
        }
        const { registry, backends } = this.o;
        if (registry.get(name)) await registry.setStatus(name, "disabled");
        else await registry.create(name, { disabled: true });
        this.applyStatus(name);
        await this.broadcast(TENANT_TOPICS.changed, { tenant: name });
        const [rooms, stateRooms, storeKeys] = await Promise.all([
          backends.history.deleteTenant(name),
          backends.state.deleteTenant(name),
          backends.kv.deleteNamespaces(`op.store/${name}/`),
        ]);
        await Promise.all([this.o.rooms.drop(name), this.o.usage.drop(name), registry.dropRevocations(name), dropLeases(backends.kv, name), this.o.onRemoved(name), this.o.onPurge?.(name)]);
        await registry.remove(name);
        await this.broadcast(TENANT_TOPICS.deleted, { tenant: name });
        return { rooms, stateRooms, storeKeys };
      },
      (r) => r,
      name,
    );
  }

  private kickHere(body: KickBody): number {
    return this.o.gateway.closeTenantConnections(
      body.tenant,
      (conn) => (body.user === undefined || conn.auth.sub === body.user) && (body.client === undefined || conn.id === body.client),
      body.code ?? CloseCode.KICKED,
      body.reason ?? "kicked",
      "kicked",
    );
  }

  /**
   * Closes (4504, or `close.code` with `close.reason`, already validated) the tenant's connections of `user` (or the
   * one with id `client`, or all) on every node.
   */
  kick(
    actor: AuditActor,
    tenant: string,
    input: { user?: unknown; client?: unknown },
    close?: { code: number; reason: string },
  ): Promise<{
    /** Connections closed on this node. */
    closedHere: number;
  }> {
    const body: KickBody = close ? { tenant, code: close.code, reason: close.reason } : { tenant };
    return this.audited(
      actor,
      "tenant.kick",
      tenant,
      async () => {
        assertTenantName(tenant);
        const user = optionalText(input.user, "user");
        const client = optionalText(input.client, "client");
        if (user !== undefined) body.user = user;
        if (client !== undefined) body.client = client;
        const closedHere = this.kickHere(body);
        await this.broadcast(TENANT_TOPICS.kick, body);
        return { closedHere };
      },
      (r) => ({ user: body.user, client: body.client, ...(close ? { code: close.code } : {}), closedHere: r.closedHere }),
    );
  }

  /** Adds a revocation rule: matching tokens are refused (401) and live ones closed (4500) on every node. */
  revoke(
    actor: AuditActor,
    tenant: string,
    input: Record<string, unknown>,
    by: string,
  ): Promise<{
    /** The rule added. */
    rule: RevocationRule;
    /** Connections it closed on this node. */
    closedHere: number;
  }> {
    return this.audited(
      actor,
      "tenant.revoke",
      tenant,
      async () => {
        const rule = await this.o.registry.revoke(tenant, input, by);
        const closedHere = this.o.gateway.applyRevocations(tenant, [rule]);
        await this.broadcast(TENANT_TOPICS.revocations, { tenant });
        return { rule, closedHere };
      },
      (r) => ({ rule: r.rule, closedHere: r.closedHere }),
    );
  }

  /** Lifts a revocation rule on every node; resolves true, or rejects with NOT_FOUND when there is no such rule. */
  unrevoke(actor: AuditActor, tenant: string, id: string): Promise<boolean> {
    return this.audited(actor, "tenant.unrevoke", tenant, async () => {
      const removed = await this.o.registry.unrevoke(tenant, id);
      if (!removed) throw new ArqonError(ErrorCode.NOT_FOUND, `no revocation "${id}" in tenant "${tenant}"`);
      await this.broadcast(TENANT_TOPICS.revocations, { tenant });
      return removed;
    });
  }

  /** Stops handling the other nodes' tenant messages (the server calls it on close). */
  close(): void {
    for (const off of this.off) off();
  }
}

async function dropLeases(kv: KeyValueStore, tenant: string): Promise<void> {
  await kv.delete(LEASES_NAMESPACE, tenant).catch(() => false);
}
