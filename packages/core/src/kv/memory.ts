import { ArqonError, BackendUnavailableError, ErrorCode } from "../errors.js";
import type { KeyValueStore, KvEntry } from "./types.js";

/** Options of `new MemoryKeyValueStore(options)`. */
export interface MemoryKeyValueOptions {
  /** Clock for `updatedAt`, in epoch milliseconds. @default Date.now */
  now?: () => number;
}

interface Slot {
  /** Revision of the last write, deletes included, so a re-created key never reuses a revision. */
  revision: number;
  entry: KvEntry | undefined;
}

function closed(): BackendUnavailableError {
  return new BackendUnavailableError("key-value store is closed");
}

function checkName(what: "namespace" | "key" | "prefix", value: unknown): void {
  if (typeof value !== "string" || value === "") {
    throw new ArqonError(ErrorCode.VALIDATION_ERROR, `${what} must be a non-empty string`, { detail: { field: what } });
  }
}

/**
 * Key-value storage kept in this process. Revisions count per key and keep counting across a delete; `ifRevision: 0`
 * succeeds only when the key does not exist (never written, or deleted). `list` sorts keys by UTF-16 code units.
 * `deleteNamespaces` leaves the same per-key tombstone `delete` does (the revision, no value).
 */
export class MemoryKeyValueStore implements KeyValueStore {
  readonly #namespaces = new Map<string, Map<string, Slot>>();
  readonly #now: () => number;
  #closed = false;

  constructor(options: MemoryKeyValueOptions = {}) {
    this.#now = options.now ?? Date.now;
  }

  /** The key's entry (shared with the store: do not mutate its value); undefined when absent. */
  async get(namespace: string, key: string): Promise<KvEntry | undefined> {
    if (this.#closed) throw closed();
    return this.#namespaces.get(namespace)?.get(key)?.entry;
  }

  /** Stores a copy of `value`; see `KeyValueStore.put` for `ifRevision`. */
  async put(namespace: string, key: string, value: Uint8Array, options?: { ifRevision?: number }): Promise<number> {
    if (this.#closed) throw closed();
    checkName("namespace", namespace);
    checkName("key", key);
    let ns = this.#namespaces.get(namespace);
    if (ns === undefined) {
      ns = new Map();
      this.#namespaces.set(namespace, ns);
    }
    const slot = ns.get(key);
    const expected = options?.ifRevision;
    if (expected !== undefined) {
      const actual = slot?.entry?.revision ?? 0;
      const ok = expected === 0 ? slot?.entry === undefined : slot?.entry !== undefined && expected === actual;
      if (!ok) {
        throw new ArqonError(ErrorCode.CONFLICT, `key "${key}" in "${namespace}" is at revision ${actual}, not ${expected}`, {
          detail: { namespace, key, expected, actual },
        });
      }
    }
    const revision = (slot?.revision ?? 0) + 1;
    const entry: KvEntry = { key, value: value.slice(), revision, updatedAt: this.#now() };
    if (slot === undefined) ns.set(key, { revision, entry });
    else {
      slot.revision = revision;
      slot.entry = entry;
    }
    return revision;
  }

  /** Deletes the key, leaving a tombstone so its revision keeps counting; resolves true when it existed. */
  async delete(namespace: string, key: string): Promise<boolean> {
    if (this.#closed) throw closed();
    const slot = this.#namespaces.get(namespace)?.get(key);
    if (slot?.entry === undefined) return false;
    slot.revision++;
    slot.entry = undefined;
    return true;
  }

  /** Live entries of the namespace, sorted by key, filtered by `prefix`; a `limit` of 0 or less means no limit. */
  async list(namespace: string, options: { prefix?: string; limit?: number } = {}): Promise<KvEntry[]> {
    if (this.#closed) throw closed();
    const ns = this.#namespaces.get(namespace);
    if (ns === undefined) return [];
    const prefix = options.prefix ?? "";
    const entries: KvEntry[] = [];
    for (const slot of ns.values()) {
      if (slot.entry !== undefined && slot.entry.key.startsWith(prefix)) entries.push(slot.entry);
    }
    entries.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    const limit = options.limit;
    return limit !== undefined && limit > 0 && limit < entries.length ? entries.slice(0, limit) : entries;
  }

  async deleteNamespaces(prefix: string): Promise<number> {
    if (this.#closed) throw closed();
    checkName("prefix", prefix);
    let removed = 0;
    for (const [name, ns] of this.#namespaces) {
      if (!name.startsWith(prefix)) continue;
      for (const slot of ns.values()) {
        if (slot.entry === undefined) continue;
        slot.revision++;
        slot.entry = undefined;
        removed++;
      }
    }
    return removed;
  }

  /** Drops every entry; later calls reject with BackendUnavailableError. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#namespaces.clear();
  }
}
