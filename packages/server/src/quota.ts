import { ArqonError, ErrorCode, jsonBytes, parseJsonBytes, type KeyValueStore } from "@arqon/core";
import type { Logger } from "pino";

function quotaExceeded(quota: string, limit: number, what: string): ArqonError {
  return new ArqonError(ErrorCode.QUOTA_EXCEEDED, `${what} (limit ${limit})`, { detail: { quota, limit } });
}

function isConflict(err: unknown): boolean {
  return err instanceof ArqonError && err.code === ErrorCode.CONFLICT;
}

/**
 * Counts a tenant's open connections against its limit. `acquire` answers synchronously when this node can decide
 * alone, so the common upgrade pays nothing extra.
 */
export interface ConnectionQuota {
  /** Takes one connection slot of `tenant`; false when `max` is reached. */
  acquire(tenant: string, max: number): boolean | Promise<boolean>;
  /** Gives a slot back (a connection closed, or an upgrade that had one failed). */
  release(tenant: string): void;
  close(): Promise<void>;
}

/** One process: an exact count per tenant. */
export class LocalConnectionQuota implements ConnectionQuota {
  private readonly counts = new Map<string, number>();

  acquire(tenant: string, max: number): boolean {
    const n = this.counts.get(tenant) ?? 0;
    if (n >= max) return false;
    this.counts.set(tenant, n + 1);
    return true;
  }

  release(tenant: string): void {
    const n = (this.counts.get(tenant) ?? 0) - 1;
    if (n <= 0) this.counts.delete(tenant);
    else this.counts.set(tenant, n);
  }

  async close(): Promise<void> {}
}

export const LEASES_NAMESPACE = "arqon.leases";
export const NODES_NAMESPACE = "arqon.nodes";
/** A node whose heartbeat is older than this is dead: its leases count no more. */
export const NODE_TTL_MS = 15_000;
const HEARTBEAT_MS = 5_000;
const SHRINK_MS = 1_000;

interface LeaseDoc {
  nodes: Record<string, { held: number; at: number }>;
}

interface TenantLease {
  used: number;
  held: number;
  max: number;
  growing: Promise<boolean> | undefined;
}

/** Slots a node takes from the tenant's limit at a time. */
export function leaseChunk(max: number): number {
  return Math.max(1, Math.min(64, Math.floor(max / 16)));
}

/**
 * Connection counts that hold across a cluster, on a shared key-value store (NATS KV). Each node holds a lease: a
 * number of slots it took from the tenant's limit, recorded in one key per tenant (`arqon.leases` / tenant) with
 * compare-and-set, so the leases of all nodes never add up to more than the limit: **a tenant's connection count
 * never goes over its limit**, whatever the race. A node takes slots in small chunks (at most 64, or 1/16 of the
 * limit), so most upgrades are decided without a round trip, and gives back what it does not use within a second
 * or two. A node that dies stops its heartbeat (`arqon.nodes` / node id, every 5 s); its leases stop counting after
 * 15 s, so its share comes back to the other nodes then. While the store is unreachable a node admits only within
 * the slots it already holds (an upgrade that needs more gets 503).
 */
export class LeasedConnectionQuota implements ConnectionQuota {
  private readonly leases = new Map<string, TenantLease>();
  private readonly heartbeat: NodeJS.Timeout;
  private readonly shrinker: NodeJS.Timeout;
  private liveNodes: { at: number; nodes: Map<string, number> } | undefined;
  private closed = false;

  constructor(
    private readonly kv: KeyValueStore,
    private readonly nodeId: string,
    private readonly logger: Logger,
  ) {
    this.heartbeat = setInterval(() => void this.beat(), HEARTBEAT_MS);
    this.heartbeat.unref();
    this.shrinker = setInterval(() => void this.shrinkAll(), SHRINK_MS);
    this.shrinker.unref();
    void this.beat();
  }

  private async beat(): Promise<void> {
    try {
      await this.kv.put(NODES_NAMESPACE, this.nodeId, jsonBytes({ at: Date.now() }));
    } catch (err) {
      this.logger.warn({ err }, "node heartbeat failed");
    }
  }

  private lease(tenant: string): TenantLease {
    let lease = this.leases.get(tenant);
    if (!lease) this.leases.set(tenant, (lease = { used: 0, held: 0, max: 0, growing: undefined }));
    return lease;
  }

  acquire(tenant: string, max: number): boolean | Promise<boolean> {
    const lease = this.lease(tenant);
    lease.max = max;
    if (lease.used < lease.held && lease.used < max) {
      lease.used++;
      return true;
    }
    return this.acquireSlow(tenant, lease);
  }

  private async acquireSlow(tenant: string, lease: TenantLease): Promise<boolean> {
    for (;;) {
      if (lease.used < lease.held && lease.used < lease.max) {
        lease.used++;
        return true;
      }
      lease.growing ??= this.grow(tenant, lease).finally(() => (lease.growing = undefined));
      if (!(await lease.growing)) {
        // Nothing more to take; a slot may still have come free while waiting.
        if (lease.used < lease.held && lease.used < lease.max) {
          lease.used++;
          return true;
        }
        return false;
      }
    }
  }

  release(tenant: string): void {
    const lease = this.leases.get(tenant);
    if (lease && lease.used > 0) lease.used--;
  }

  private async nodesAlive(): Promise<Map<string, number>> {
    const now = Date.now();
    if (this.liveNodes && now - this.liveNodes.at < 2_000) return this.liveNodes.nodes;
    const entries = await this.kv.list(NODES_NAMESPACE, { limit: 100_000 });
    const nodes = new Map<string, number>();
    for (const e of entries) {
      const { at } = parseJsonBytes(e.value) as { at: number };
      nodes.set(e.key, at);
    }
    this.liveNodes = { at: now, nodes };
    return nodes;
  }

  /** Reads, changes and writes a tenant's lease document with compare-and-set; `change` returns false to stop. */
  private async update(tenant: string, change: (doc: LeaseDoc, others: number) => boolean): Promise<boolean> {
    const alive = await this.nodesAlive();
    for (let attempt = 0; attempt < 50; attempt++) {
      const entry = await this.kv.get(LEASES_NAMESPACE, tenant);
      const doc: LeaseDoc = entry ? (parseJsonBytes(entry.value) as LeaseDoc) : { nodes: {} };
      const now = Date.now();
      let others = 0;
      for (const [node, l] of Object.entries(doc.nodes)) {
        if (node === this.nodeId) continue;
        const beat = alive.get(node) ?? 0;
        if (now - Math.max(beat, l.at) > NODE_TTL_MS) delete doc.nodes[node];
        else others += l.held;
      }
      if (!change(doc, others)) return false;
      try {
        await this.kv.put(LEASES_NAMESPACE, tenant, jsonBytes(doc), { ifRevision: entry?.revision ?? 0 });
        return true;
      } catch (err) {
        if (!isConflict(err)) throw err;
      }
    }
    throw new ArqonError(ErrorCode.BACKEND_UNAVAILABLE, "connection lease kept changing");
  }

  private async grow(tenant: string, lease: TenantLease): Promise<boolean> {
    if (this.closed) return false;
    let grown = 0;
    const ok = await this.update(tenant, (doc, others) => {
      const room = lease.max - others - lease.held;
      const chunk = Math.min(room, leaseChunk(lease.max));
      if (chunk <= 0) return false;
      grown = chunk;
      doc.nodes[this.nodeId] = { held: lease.held + chunk, at: Date.now() };
      return true;
    });
    if (ok) lease.held += grown;
    return ok;
  }

  /** Gives back slots a node holds beyond its use plus one chunk. */
  private async shrinkAll(): Promise<void> {
    for (const [tenant, lease] of this.leases) {
      const keep = lease.used === 0 ? 0 : Math.min(lease.held, lease.used + leaseChunk(lease.max));
      if (lease.held - keep < (lease.used === 0 ? 1 : leaseChunk(lease.max)) || lease.growing) continue;
      try {
        await this.update(tenant, (doc) => {
          const target = lease.used === 0 ? 0 : Math.min(lease.held, lease.used + leaseChunk(lease.max));
          if (target === 0) delete doc.nodes[this.nodeId];
          else doc.nodes[this.nodeId] = { held: target, at: Date.now() };
          lease.held = target;
          return true;
        });
        if (lease.held === 0 && lease.used === 0) this.leases.delete(tenant);
      } catch (err) {
        this.logger.warn({ err, tenant }, "could not give back connection slots");
      }
    }
  }

  /** Gives every slot back and stops the heartbeat. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.heartbeat);
    clearInterval(this.shrinker);
    for (const [tenant, lease] of this.leases) {
      if (lease.held === 0) continue;
      try {
        await this.update(tenant, (doc) => {
          delete doc.nodes[this.nodeId];
          return true;
        });
      } catch {
        // Its heartbeat stops; the lease stops counting after NODE_TTL_MS.
      }
    }
    this.leases.clear();
    await this.kv.delete(NODES_NAMESPACE, this.nodeId).catch(() => false);
  }
}

export const USAGE_NAMESPACE = "arqon.usage";

/** A tenant's counted resources. */
export interface TenantUsage {
  /** Rooms that hold data (history or state), counted against `maxRooms`. */
  rooms: number;
  /** op.store keys, all namespaces together (`maxStoreKeys`). */
  storeKeys: number;
  /** Bytes of op.store values (`maxStoreBytes`). */
  storeBytes: number;
}

type UsageLimits = Partial<Record<keyof TenantUsage, number>>;

const USAGE_WHAT: Record<keyof TenantUsage, string> = {
  rooms: "the tenant has as many rooms holding data as it may",
  storeKeys: "the tenant has as many op.store keys as it may",
  storeBytes: "op.store values of the tenant would exceed their byte limit",
};
const USAGE_QUOTA: Record<keyof TenantUsage, string> = { rooms: "maxRooms", storeKeys: "maxStoreKeys", storeBytes: "maxStoreBytes" };

/**
 * Per-tenant usage counters (rooms holding data, op.store keys and bytes) in one key per tenant of the key-value
 * store, changed with compare-and-set: on NATS KV they count across the cluster, and a charge that would pass a limit
 * is refused with ARQ_QUOTA_EXCEEDED whatever the race. Negative charges (a release) never fail and floor at 0.
 */
export class UsageCounter {
  constructor(private readonly kv: KeyValueStore) {}

  async get(tenant: string): Promise<TenantUsage> {
    const entry = await this.kv.get(USAGE_NAMESPACE, tenant);
    return { rooms: 0, storeKeys: 0, storeBytes: 0, ...(entry ? (parseJsonBytes(entry.value) as Partial<TenantUsage>) : {}) };
  }

  async charge(tenant: string, delta: Partial<TenantUsage>, limits: UsageLimits = {}): Promise<TenantUsage> {
    for (let attempt = 0; attempt < 50; attempt++) {
      const entry = await this.kv.get(USAGE_NAMESPACE, tenant);
      const current: TenantUsage = { rooms: 0, storeKeys: 0, storeBytes: 0, ...(entry ? (parseJsonBytes(entry.value) as Partial<TenantUsage>) : {}) };
      const next = { ...current };
      for (const [field, d] of Object.entries(delta) as Array<[keyof TenantUsage, number]>) {
        if (!d) continue;
        next[field] = Math.max(0, current[field] + d);
        const limit = limits[field];
        if (d > 0 && limit !== undefined && next[field] > limit) throw quotaExceeded(USAGE_QUOTA[field], limit, USAGE_WHAT[field]);
      }
      try {
        await this.kv.put(USAGE_NAMESPACE, tenant, jsonBytes(next), { ifRevision: entry?.revision ?? 0 });
        return next;
      } catch (err) {
        if (!isConflict(err)) throw err;
      }
    }
    throw new ArqonError(ErrorCode.BACKEND_UNAVAILABLE, "usage counter kept changing");
  }

  async drop(tenant: string): Promise<void> {
    await this.kv.delete(USAGE_NAMESPACE, tenant);
  }
}

/** The registry namespace of one tenant's rooms (one key per room holding data). */
export function roomsNamespace(tenant: string): string {
  return `arqon.rooms/${tenant}/`;
}

/** Rooms remembered as registered per tenant on one node; past it the memory starts over (only a shortcut). */
const MAX_KNOWN_ROOMS = 8192;
/** A tenant at its room limit looks for rooms whose data is gone at most this often (per node). */
const RECLAIM_INTERVAL_MS = 60_000;

/**
 * The rooms of each tenant that hold data (history or state), counted against `maxRooms` across the cluster. A room
 * is registered at its first publish or state write (one key-value read on each node the first time it sees the
 * room; creating it also charges the tenant's usage counter). A tenant at its limit gets ARQ_QUOTA_EXCEEDED for a new
 * room; before refusing, the registry reclaims rooms whose data has expired (`isEmpty`: no retained history, no
 * state), at most once a minute per tenant and node, so rooms that retention emptied do not hold the limit forever.
 */
export class RoomRegistry {
  private readonly known = new Map<string, Set<string>>();
  private readonly pending = new Map<string, Promise<void>>();
  private readonly reclaimedAt = new Map<string, number>();

  constructor(
    private readonly kv: KeyValueStore,
    private readonly usage: UsageCounter,
    private readonly isEmpty: (tenant: string, room: string) => Promise<boolean>,
    /** Called with rooms this node unregistered, so other nodes forget them too. */
    private readonly onForget: (tenant: string, rooms: string[]) => void,
  ) {}

  /** Resolves once `room` is registered (at once, without a promise, when this node knows it already). */
  ensure(tenant: string, room: string, maxRooms: number): void | Promise<void> {
    if (this.known.get(tenant)?.has(room)) return;
    const id = `${tenant}\u0000${room}`;
    let pending = this.pending.get(id);
    if (!pending) {
      pending = this.register(tenant, room, maxRooms).finally(() => this.pending.delete(id));
      this.pending.set(id, pending);
    }
    return pending;
  }

  private remember(tenant: string, room: string): void {
    let set = this.known.get(tenant);
    if (!set) this.known.set(tenant, (set = new Set()));
    if (set.size >= MAX_KNOWN_ROOMS) set.clear();
    set.add(room);
  }

  /** Forgets rooms (another node unregistered them, or the tenant was deleted when `rooms` is undefined). */
  forget(tenant: string, rooms?: readonly string[]): void {
    if (rooms === undefined) {
      this.known.delete(tenant);
      return;
    }
    const set = this.known.get(tenant);
    for (const r of rooms) set?.delete(r);
  }

  private async register(tenant: string, room: string, maxRooms: number): Promise<void> {
    const ns = roomsNamespace(tenant);
    if (await this.kv.get(ns, room)) return this.remember(tenant, room);
    try {
      await this.usage.charge(tenant, { rooms: 1 }, { rooms: maxRooms });
    } catch (err) {
      if (!(err instanceof ArqonError && err.code === ErrorCode.QUOTA_EXCEEDED) || !(await this.reclaim(tenant))) throw err;
      await this.usage.charge(tenant, { rooms: 1 }, { rooms: maxRooms });
    }
    try {
      await this.kv.put(ns, room, jsonBytes({ createdAt: Date.now() }), { ifRevision: 0 });
    } catch (err) {
      // Another node registered it meanwhile: it is counted once, by that node.
      await this.usage.charge(tenant, { rooms: -1 });
      if (!isConflict(err)) throw err;
    }
    this.remember(tenant, room);
  }

  /** Unregisters rooms whose data is gone; resolves true when it freed any. */
  private async reclaim(tenant: string): Promise<boolean> {
    const now = Date.now();
    if (now - (this.reclaimedAt.get(tenant) ?? 0) < RECLAIM_INTERVAL_MS) return false;
    this.reclaimedAt.set(tenant, now);
    const ns = roomsNamespace(tenant);
    const freed: string[] = [];
    for (const entry of await this.kv.list(ns, { limit: 1_000_000 })) {
      if (!(await this.isEmpty(tenant, entry.key))) continue;
      if (await this.kv.delete(ns, entry.key)) {
        await this.usage.charge(tenant, { rooms: -1 });
        freed.push(entry.key);
      }
    }
    if (freed.length > 0) {
      this.forget(tenant, freed);
      this.onForget(tenant, freed);
    }
    return freed.length > 0;
  }

  /** Forgets and unregisters every room of a tenant (tenant deletion). */
  async drop(tenant: string): Promise<void> {
    this.known.delete(tenant);
    this.reclaimedAt.delete(tenant);
    await this.kv.deleteNamespaces(roomsNamespace(tenant));
  }
}
