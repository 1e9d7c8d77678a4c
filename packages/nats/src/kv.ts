import type { KV, KvEntry as NatsKvEntry } from "@nats-io/kv";
import { ArqonError, BackendUnavailableError, ErrorCode, type KeyValueStore, type KvEntry } from "@arqon/core";
import { isWrongLastSequence, type NatsLink } from "./link.js";
import { fromKvToken, kvToken } from "./subjects.js";

/** The KV bucket {@link NatsKvKeyValueStore} uses unless `bucket` names another. */
export const DEFAULT_KV_BUCKET = "ARQON_KV";

/** Options of `NatsKvKeyValueStore.create(options)`. */
export interface NatsKvKeyValueOptions {
  /** The node's NATS connection. */
  link: NatsLink;
  /** The KV bucket's name. @default "ARQON_KV" */
  bucket?: string;
  /** JetStream replicas of the bucket when this call creates it. @default 1 */
  replicas?: number;
}

/**
 * A stored value: a small header (format, flags, the key's own revision, write time) and the bytes. The key's
 * revision counts every write to that key, deletes included (a delete writes a tombstone), so it starts at 1 and a
 * re-created key never repeats a revision a stale compare-and-set could match.
 */
const HEADER = 18;
const FLAG_DELETED = 1;

interface Slot {
  revision: number;
  updatedAt: number;
  deleted: boolean;
  value: Uint8Array;
}

function encodeSlot(slot: Slot): Uint8Array {
  const out = new Uint8Array(HEADER + slot.value.length);
  const view = new DataView(out.buffer);
  view.setUint8(0, 1);
  view.setUint8(1, slot.deleted ? FLAG_DELETED : 0);
  view.setFloat64(2, slot.revision);
  view.setFloat64(10, slot.updatedAt);
  out.set(slot.value, HEADER);
  return out;
}

function decodeSlot(entry: NatsKvEntry | null): Slot | undefined {
  if (entry === null || entry.operation !== "PUT" || entry.value.length < HEADER) return undefined;
  const view = new DataView(entry.value.buffer, entry.value.byteOffset, entry.value.byteLength);
  if (view.getUint8(0) !== 1) return undefined;
  return {
    deleted: (view.getUint8(1) & FLAG_DELETED) !== 0,
    revision: view.getFloat64(2),
    updatedAt: view.getFloat64(10),
    value: entry.value.slice(HEADER),
  };
}

function checkName(what: "namespace" | "key", value: unknown): asserts value is string {
  if (typeof value !== "string" || value === "") {
    throw new ArqonError(ErrorCode.VALIDATION_ERROR, `${what} must be a non-empty string`, { detail: { field: what } });
  }
}

const MAX_ATTEMPTS = 50;

/** Namespace and key of a NATS key this store wrote; undefined for any other key in the bucket. */
function splitKey(natsKey: string): { namespace: string; key: string } | undefined {
  const dot = natsKey.indexOf(".");
  if (dot < 0 || natsKey.indexOf(".", dot + 1) >= 0) return undefined;
  try {
    return { namespace: fromKvToken(natsKey.slice(0, dot)), key: fromKvToken(natsKey.slice(dot + 1)) };
  } catch {
    return undefined;
  }
}

/**
 * The key-value store on one NATS KV bucket (`ARQON_KV`), NATS key `<namespace>.<key>` (each escaped into one token).
 * Compare-and-set rides on KV's own revision check (`update(key, value, revision)`), so it is atomic across nodes.
 * `list` walks the namespace's keys (`<namespace>.>`): cost grows with the namespace's size. `deleteNamespaces`
 * walks the whole bucket and leaves the same tombstones `delete` does, so revisions keep counting.
 */
export class NatsKvKeyValueStore implements KeyValueStore {
  readonly #link: NatsLink;
  readonly #kv: KV;
  #closed = false;

  private constructor(link: NatsLink, kv: KV) {
    this.#link = link;
    this.#kv = kv;
  }

  /** Opens (creating if needed) the bucket. */
  static async create(options: NatsKvKeyValueOptions): Promise<NatsKvKeyValueStore> {
    const { link } = options;
    try {
      const kv = await link.kvm.create(options.bucket ?? DEFAULT_KV_BUCKET, { history: 1, replicas: options.replicas ?? 1 });
      return new NatsKvKeyValueStore(link, kv);
    } catch (error) {
      throw link.fail("key-value store", error);
    }
  }

  #guard(): void {
    if (this.#closed) throw new BackendUnavailableError("key-value store is closed");
    this.#link.guard("key-value store");
  }

  /**
   * The live entry of `key` in `namespace` (value, revision, write time), or undefined when it is absent or deleted.
   * Rejects with VALIDATION_ERROR for an empty namespace or key, and with `BackendUnavailableError` when NATS is
   * unreachable.
   */
  async get(namespace: string, key: string): Promise<KvEntry | undefined> {
    this.#guard();
    checkName("namespace", namespace);
    checkName("key", key);
    try {
      const slot = decodeSlot(await this.#kv.get(`${kvToken(namespace)}.${kvToken(key)}`));
      return slot === undefined || slot.deleted ? undefined : { key, value: slot.value, revision: slot.revision, updatedAt: slot.updatedAt };
    } catch (error) {
      throw this.#link.fail("key-value get", error);
    }
  }

  /**
   * Writes `value` and resolves with the key's new revision (one above its last, deletes included). With `ifRevision`
   * it is a compare-and-set: applied only if the key is live at that revision (0: only if it is absent or deleted),
   * else it rejects with CONFLICT. Also rejects with CONFLICT when concurrent writes kept winning for 50 attempts,
   * and with `PayloadTooLargeError` above the NATS server's `max_payload`.
   */
  async put(namespace: string, key: string, value: Uint8Array, options?: { ifRevision?: number }): Promise<number> {
    this.#guard();
    checkName("namespace", namespace);
    checkName("key", key);
    const expected = options?.ifRevision;
    const natsKey = `${kvToken(namespace)}.${kvToken(key)}`;
    try {
      for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
        const current = await this.#kv.get(natsKey);
        const slot = decodeSlot(current);
        const live = slot !== undefined && !slot.deleted;
        if (expected !== undefined) {
          const ok = expected === 0 ? !live : live && slot.revision === expected;
          if (!ok) {
            const actual = live ? slot.revision : 0;
            throw new ArqonError(ErrorCode.CONFLICT, `key "${key}" in "${namespace}" is at revision ${actual}, not ${expected}`, {
              detail: { namespace, key, expected, actual },
            });
          }
        }
        const revision = (slot?.revision ?? 0) + 1;
        const data = encodeSlot({ revision, updatedAt: Date.now(), deleted: false, value });
        this.#link.checkSize(data.length);
        try {
          await this.#kv.put(natsKey, data, { previousSeq: current?.revision ?? 0 });
          return revision;
        } catch (error) {
          if (!isWrongLastSequence(error)) throw error;
        }
      }
      throw new ArqonError(ErrorCode.CONFLICT, `key "${key}" in "${namespace}" kept changing; gave up after ${MAX_ATTEMPTS} attempts`);
    } catch (error) {
      throw this.#link.fail("key-value put", error);
    }
  }

  /**
   * Deletes `key` by writing a tombstone one revision later (so a re-created key never repeats a revision); resolves
   * true if the key was live, false if it was absent or already deleted.
   */
  async delete(namespace: string, key: string): Promise<boolean> {
    this.#guard();
    checkName("namespace", namespace);
    checkName("key", key);
    try {
      return await this.#tombstone(namespace, key);
    } catch (error) {
      throw this.#link.fail("key-value delete", error);
    }
  }

  /** Replaces a live key with a tombstone one revision later; false when the key is absent or already deleted. */
  async #tombstone(namespace: string, key: string): Promise<boolean> {
    const natsKey = `${kvToken(namespace)}.${kvToken(key)}`;
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const current = await this.#kv.get(natsKey);
      const slot = decodeSlot(current);
      if (current === null || slot === undefined || slot.deleted) return false;
      const data = encodeSlot({ revision: slot.revision + 1, updatedAt: Date.now(), deleted: true, value: new Uint8Array(0) });
      try {
        await this.#kv.update(natsKey, data, current.revision);
        return true;
      } catch (error) {
        if (!isWrongLastSequence(error)) throw error;
      }
    }
    throw new ArqonError(ErrorCode.CONFLICT, `key "${key}" in "${namespace}" kept changing; gave up after ${MAX_ATTEMPTS} attempts`);
  }

  /**
   * Namespaces are escaped into one KV token each, so a namespace prefix is no subject filter: this walks every key
   * of the bucket (cost grows with the bucket's size; meant for rare admin deletes) and tombstones the matching ones
   * as `delete` does.
   */
  async deleteNamespaces(prefix: string): Promise<number> {
    this.#guard();
    if (typeof prefix !== "string" || prefix === "") {
      throw new ArqonError(ErrorCode.VALIDATION_ERROR, "prefix must be a non-empty string", { detail: { field: "prefix" } });
    }
    try {
      const matched: { namespace: string; key: string }[] = [];
      for await (const natsKey of await this.#kv.keys()) {
        const parts = splitKey(natsKey);
        if (parts !== undefined && parts.namespace.startsWith(prefix)) matched.push(parts);
      }
      let removed = 0;
      for (let i = 0; i < matched.length; i += 16) {
        const done = await Promise.all(matched.slice(i, i + 16).map(({ namespace, key }) => this.#tombstone(namespace, key)));
        removed += done.filter(Boolean).length;
      }
      return removed;
    } catch (error) {
      throw this.#link.fail("key-value delete namespaces", error);
    }
  }

  /**
   * The live entries of `namespace` in ascending key order: only keys that start with `prefix` when given, and at
   * most `limit` (when > 0). Reads every key name of the namespace first, so cost grows with its size.
   */
  async list(namespace: string, options: { prefix?: string; limit?: number } = {}): Promise<KvEntry[]> {
    this.#guard();
    checkName("namespace", namespace);
    const prefix = options.prefix ?? "";
    const ns = kvToken(namespace);
    try {
      const names: string[] = [];
      const keys = await this.#kv.keys(`${ns}.*`);
      for await (const natsKey of keys) {
        const name = fromKvToken(natsKey.slice(ns.length + 1));
        if (name.startsWith(prefix)) names.push(name);
      }
      names.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
      const entries: KvEntry[] = [];
      const limit = options.limit !== undefined && options.limit > 0 ? options.limit : Number.POSITIVE_INFINITY;
      // Keys are visited in order and fetched in small batches, so a tombstone costs a read but never a wrong page.
      for (let i = 0; i < names.length && entries.length < limit; i += 16) {
        const batch = names.slice(i, i + 16);
        const got = await Promise.all(batch.map((name) => this.#kv.get(`${ns}.${kvToken(name)}`)));
        for (let j = 0; j < batch.length && entries.length < limit; j++) {
          const slot = decodeSlot(got[j]!);
          if (slot !== undefined && !slot.deleted) {
            entries.push({ key: batch[j]!, value: slot.value, revision: slot.revision, updatedAt: slot.updatedAt });
          }
        }
      }
      return entries;
    } catch (error) {
      throw this.#link.fail("key-value list", error);
    }
  }

  /** Marks the store closed: later calls reject with `BackendUnavailableError`. The bucket and the NatsLink stay. */
  async close(): Promise<void> {
    this.#closed = true;
  }
}
