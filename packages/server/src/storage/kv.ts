import type { Database } from "lmdb";
import { ArqonError, BackendUnavailableError, ErrorCode, type KeyValueStore, type KvEntry } from "@arqon/core";
import { DB, plainBytes, wallClock, type StorageClock, type StorageEnv } from "./env.js";

/** Longest namespace + key, in UTF-8 bytes, that fits an LMDB key with room to spare. */
export const MAX_KV_KEY_BYTES = 1024;

export interface LmdbKeyValueOptions {
  /** @default wall time */
  clock?: StorageClock;
}

interface Row {
  value: Uint8Array;
  revision: number;
  updatedAt: number;
}

type RowKey = [string, string];

function closed(): BackendUnavailableError {
  return new BackendUnavailableError("key-value store is closed");
}

function check(namespace: unknown, key: unknown): void {
  for (const [what, value] of [
    ["namespace", namespace],
    ["key", key],
  ] as const) {
    if (typeof value !== "string" || value === "") {
      throw new ArqonError(ErrorCode.VALIDATION_ERROR, `${what} must be a non-empty string`, { detail: { field: what } });
    }
  }
  if (Buffer.byteLength(namespace as string) + Buffer.byteLength(key as string) > MAX_KV_KEY_BYTES) {
    throw new ArqonError(ErrorCode.VALIDATION_ERROR, `namespace and key together exceed ${MAX_KV_KEY_BYTES} bytes`, {
      detail: { field: "key", limit: MAX_KV_KEY_BYTES },
    });
  }
}

function entry(key: string, row: Row): KvEntry {
  return { key, value: plainBytes(row.value)!, revision: row.revision, updatedAt: row.updatedAt };
}

/**
 * Key-value storage in LMDB. Revisions count per key and keep counting across a delete (a tombstone row keeps the
 * last revision); `ifRevision: 0` succeeds only when the key does not exist. Compare-and-set is checked inside the
 * write transaction. `list` returns keys in UTF-8 byte order (= code point order). `deleteNamespaces` turns every
 * matching row into a tombstone in one write transaction, as `delete` does.
 */
export class LmdbKeyValueStore implements KeyValueStore {
  readonly #env: StorageEnv;
  readonly #rows: Database<Row, RowKey>;
  readonly #tombstones: Database<number, RowKey>;
  readonly #clock: StorageClock;
  #closed = false;

  constructor(env: StorageEnv, options: LmdbKeyValueOptions = {}) {
    this.#env = env;
    this.#rows = env.openDB(DB.kvEntries);
    this.#tombstones = env.openDB(DB.kvTombstones);
    this.#clock = options.clock ?? wallClock;
  }

  async get(namespace: string, key: string): Promise<KvEntry | undefined> {
    if (this.#closed) throw closed();
    if (typeof namespace !== "string" || typeof key !== "string" || namespace === "" || key === "") return undefined;
    const row = this.#rows.get([namespace, key]);
    return row === undefined ? undefined : entry(key, row);
  }

  async put(namespace: string, key: string, value: Uint8Array, options?: { ifRevision?: number }): Promise<number> {
    if (this.#closed) throw closed();
    check(namespace, key);
    const expected = options?.ifRevision;
    const bytes = value.slice();
    const outcome = await this.#env.write(() => {
      const current = this.#rows.get([namespace, key]);
      if (expected !== undefined) {
        const ok = expected === 0 ? current === undefined : current !== undefined && current.revision === expected;
        if (!ok) return { conflict: true as const, actual: current?.revision ?? 0 };
      }
      const revision = (current?.revision ?? this.#tombstones.get([namespace, key]) ?? 0) + 1;
      this.#rows.put([namespace, key], { value: bytes, revision, updatedAt: this.#clock.now() });
      if (current === undefined) this.#tombstones.remove([namespace, key]);
      return { conflict: false as const, revision };
    });
    if (outcome.conflict) {
      throw new ArqonError(ErrorCode.CONFLICT, `key "${key}" in "${namespace}" is at revision ${outcome.actual}, not ${expected}`, {
        detail: { namespace, key, expected, actual: outcome.actual },
      });
    }
    return outcome.revision;
  }

  async delete(namespace: string, key: string): Promise<boolean> {
    if (this.#closed) throw closed();
    if (typeof namespace !== "string" || typeof key !== "string" || namespace === "" || key === "") return false;
    return this.#env.write(() => {
      const current = this.#rows.get([namespace, key]);
      if (current === undefined) return false;
      this.#rows.remove([namespace, key]);
      this.#tombstones.put([namespace, key], current.revision + 1);
      return true;
    });
  }

  async list(namespace: string, options: { prefix?: string; limit?: number } = {}): Promise<KvEntry[]> {
    if (this.#closed) throw closed();
    const prefix = options.prefix ?? "";
    const limit = options.limit !== undefined && options.limit > 0 ? options.limit : Number.POSITIVE_INFINITY;
    const out: KvEntry[] = [];
    if (typeof namespace !== "string" || namespace === "") return out;
    for (const { key: k, value } of this.#rows.getRange({ start: [namespace, prefix] })) {
      if (k[0] !== namespace || !k[1].startsWith(prefix) || out.length >= limit) break;
      out.push(entry(k[1], value));
    }
    return out;
  }

  async deleteNamespaces(prefix: string): Promise<number> {
    if (this.#closed) throw closed();
    if (typeof prefix !== "string" || prefix === "") {
      throw new ArqonError(ErrorCode.VALIDATION_ERROR, "prefix must be a non-empty string", { detail: { field: "prefix" } });
    }
    return this.#env.write(() => {
      const matched: { key: RowKey; revision: number }[] = [];
      for (const { key, value } of this.#rows.getRange({ start: [prefix, ""] })) {
        if (!key[0].startsWith(prefix)) break;
        matched.push({ key, revision: value.revision });
      }
      for (const { key, revision } of matched) {
        this.#rows.remove(key);
        this.#tombstones.put(key, revision + 1);
      }
      return matched.length;
    });
  }

  async close(): Promise<void> {
    this.#closed = true;
  }
}
