/** One stored key of a `KeyValueStore` namespace. */
export interface KvEntry {
  /** The key within its namespace. */
  key: string;
  /** The value as last written (opaque bytes). */
  value: Uint8Array;
  /** Grows with every write to this key; starts at 1. */
  revision: number;
  /** When the value was written, in epoch milliseconds. */
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
 * - Revisions never repeat: a key written again after `delete` or `deleteNamespaces` gets a revision above every one
 *   it had, so a stale compare-and-set never succeeds.
 */
export interface KeyValueStore {
  /** The key's entry; undefined when it does not exist (never written, or deleted). */
  get(namespace: string, key: string): Promise<KvEntry | undefined>;
  /**
   * Writes `value` and resolves with the key's new revision. With `ifRevision`, writes only when the key is at that
   * revision (0: does not exist), else rejects with CONFLICT. An empty namespace or key rejects with VALIDATION_ERROR.
   */
  put(namespace: string, key: string, value: Uint8Array, options?: { ifRevision?: number }): Promise<number>;
  /** Deletes the key; resolves true when it existed. */
  delete(namespace: string, key: string): Promise<boolean>;
  /** The entries of one namespace in ascending key order, only keys starting with `prefix`, at most `limit`. */
  list(namespace: string, options?: { prefix?: string; limit?: number }): Promise<KvEntry[]>;
  /**
   * Deletes every key of every namespace whose name starts with `prefix`, as `delete` would one by one; resolves
   * with the number of keys deleted. Namespaces that do not start with `prefix` are untouched. Matching is on the
   * raw string: `"rooms/acme"` also matches `"rooms/acme2"`, so end the prefix with a separator (`"op.store/acme/"`)
   * to stay inside one subtree. An empty or non-string `prefix` rejects with VALIDATION_ERROR.
   */
  deleteNamespaces(prefix: string): Promise<number>;
  /** Closes this handle: later calls reject with BackendUnavailableError. A durable backend keeps its data. */
  close(): Promise<void>;
}
