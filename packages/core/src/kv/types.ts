export interface KvEntry {
  key: string;
  value: Uint8Array;
  /** Grows with every write to this key; starts at 1. */
  revision: number;
  updatedAt: number;
}

/**
 * Namespaced key/value storage for operators (op.store) and agents.
 *
 * Guarantees every backend keeps, checked by `describeKeyValueContract`:
 * - `put` resolves with the new revision; `get` reflects every `put`/`delete` that resolved before it was called.
 * - Compare-and-set: with `ifRevision`, `put` applies only if the key's current revision matches (0 = must not exist),
 *   atomically, else it rejects with code CONFLICT and nothing changes.
 * - Namespaces are independent; `list` returns keys of one namespace in ascending key order.
 * - A durable backend keeps every acknowledged write across a process kill.
 */
export interface KeyValueStore {
  get(namespace: string, key: string): Promise<KvEntry | undefined>;
  put(namespace: string, key: string, value: Uint8Array, options?: { ifRevision?: number }): Promise<number>;
  delete(namespace: string, key: string): Promise<boolean>;
  list(namespace: string, options?: { prefix?: string; limit?: number }): Promise<KvEntry[]>;
  close(): Promise<void>;
}
