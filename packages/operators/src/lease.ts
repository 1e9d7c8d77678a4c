import { ArqonError, ErrorCode, jsonBytes, parseJsonBytes, type KeyValueStore } from "@arqon/core";

interface LeaseRecord {
  node: string;
  /** Until when the holder may act, ms (its clock). */
  until: number;
}

export interface LeaseOptions {
  kv: KeyValueStore;
  namespace: string;
  key: string;
  /** Who asks (the host's node id). */
  node: string;
  /** How long a lease lasts without a renewal. @default 10000 */
  ttlMs?: number;
  /**
   * One node only (the host says it is not clustered): the lease is always held and nothing is stored, so a restarted
   * process does not wait for the lease of its previous life to expire.
   */
  solo?: boolean;
  now?: () => number;
}

/**
 * A lease in the key-value store: at most one node holds it at a time (on NATS KV, across the cluster), so one node
 * runs the schedules or delivers a webhook. `tryHold` takes the lease when it is free or expired, renews it when this
 * node holds it, and answers whether this node holds it now; every write is a compare-and-set, so two nodes racing
 * for a free lease cannot both win. A holder that stops renewing (it died, or lost the store) loses the lease after
 * `ttlMs`; its successor takes over then. Clocks of nodes must agree to well within `ttlMs`.
 */
export class KvLease {
  readonly ttlMs: number;
  private readonly now: () => number;
  private held = false;

  constructor(private readonly o: LeaseOptions) {
    this.ttlMs = o.ttlMs ?? 10_000;
    this.now = o.now ?? Date.now;
  }

  /** Whether this node held the lease at its last `tryHold`. */
  get holding(): boolean {
    return this.held;
  }

  async tryHold(): Promise<boolean> {
    if (this.o.solo) return (this.held = true);
    const { kv, namespace, key, node } = this.o;
    try {
      const entry = await kv.get(namespace, key);
      const record = entry ? (parseJsonBytes(entry.value) as LeaseRecord) : undefined;
      const now = this.now();
      if (record && record.node !== node && record.until > now) return (this.held = false);
      await kv.put(namespace, key, jsonBytes({ node, until: now + this.ttlMs }), { ifRevision: entry?.revision ?? 0 });
      return (this.held = true);
    } catch (err) {
      this.held = false;
      if (err instanceof ArqonError && err.code === ErrorCode.CONFLICT) return false;
      throw err;
    }
  }

  /** Gives the lease up (when held), so a successor need not wait for it to expire. */
  async release(): Promise<void> {
    if (!this.held || this.o.solo) return;
    this.held = false;
    const { kv, namespace, key, node } = this.o;
    const entry = await kv.get(namespace, key);
    if (!entry || (parseJsonBytes(entry.value) as LeaseRecord).node !== node) return;
    await kv.put(namespace, key, jsonBytes({ node, until: 0 }), { ifRevision: entry.revision }).catch(() => undefined);
  }
}
