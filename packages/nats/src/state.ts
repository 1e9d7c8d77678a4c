import { KvWatchInclude, type KV, type KvEntry as NatsKvEntry } from "@nats-io/kv";
import type { QueuedIterator } from "@nats-io/transport-node";
import type { KvWatchEntry } from "@nats-io/kv";
import {
  ArqonError,
  BackendUnavailableError,
  ErrorCode,
  fromBase64,
  StateConflictError,
  toBase64,
  type RoomKey,
  type RoomStateStore,
  type StateEntry,
  type StatePoint,
  type StateWrite,
  type Unsubscribe,
} from "@arqon/core";
import type { HandlerErrorReporter } from "./bus.js";
import { isWrongLastSequence, type NatsLink } from "./link.js";
import { scanSubject } from "./subject-log.js";
import { kvToken, roomKeyOfKv, roomKvKey } from "./subjects.js";

/** The KV bucket {@link NatsKvRoomStateStore} keeps room state in unless `bucket` names another. */
export const DEFAULT_STATE_BUCKET = "ARQON_STATE";

/** Options of `NatsKvRoomStateStore.create(options)`. */
export interface NatsKvRoomStateOptions {
  /** The node's NATS connection. */
  link: NatsLink;
  /** The KV bucket's name. @default "ARQON_STATE" */
  bucket?: string;
  /** Writes kept per room for `at` (the bucket's history per key) when this call creates the bucket. @default 1000 */
  maxLogEntries?: number;
  /** JetStream replicas when this call creates the bucket. @default 1 */
  replicas?: number;
  /** Receives what a `watch` handler throws (the other handlers still run). @default rethrow on a microtask */
  onHandlerError?: HandlerErrorReporter;
}

interface WireEntry {
  k: string;
  v?: string;
  n: number;
  d?: 1;
  t: number;
  b?: string;
}

/** One room's state after its `rev`-th write, and that write. */
interface Snapshot {
  rev: number;
  last: WireEntry;
  entries: WireEntry[];
  /** Version a key not in `entries` continues from (set when the room's tenant was deleted before). */
  f?: number;
}

/** Per tenant: the highest key version any deleted room of the tenant reached. */
interface FloorRecord {
  floor: number;
}

function toWire(e: StateEntry): WireEntry {
  const w: WireEntry = { k: e.key, n: e.version ?? 0, t: e.updatedAt ?? 0 };
  if (e.deleted) w.d = 1;
  else if (e.value !== undefined) w.v = toBase64(e.value);
  if (e.updatedBy !== undefined) w.b = e.updatedBy;
  return w;
}

function fromWire(w: WireEntry): StateEntry {
  const e: StateEntry = { key: w.k, version: w.n, updatedAt: w.t };
  if (w.d) e.deleted = true;
  else e.value = w.v === undefined ? new Uint8Array(0) : (fromBase64(w.v) ?? new Uint8Array(0));
  if (w.b !== undefined) e.updatedBy = w.b;
  return e;
}

const decoder = new TextDecoder();
const encoder = new TextEncoder();

function parseSnapshot(data: Uint8Array): Snapshot | undefined {
  try {
    const s = JSON.parse(decoder.decode(data)) as Snapshot;
    return typeof s.rev === "number" && Array.isArray(s.entries) ? s : undefined;
  } catch {
    return undefined;
  }
}

function snapshotOf(entry: NatsKvEntry | null): Snapshot | undefined {
  return entry !== null && entry.operation === "PUT" ? parseSnapshot(entry.value) : undefined;
}

function live(s: Snapshot | undefined): StateEntry[] {
  if (s === undefined) return [];
  return s.entries
    .filter((w) => !w.d)
    .map(fromWire)
    .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

const MAX_ATTEMPTS = 100;

/** The KV key of a tenant's floor record: its first token holds a `/`, which no room's KV key has. */
function floorKey(tenantToken: string): string {
  return `tenant/floor.${tenantToken}`;
}

function floorOf(entry: NatsKvEntry | null): number {
  if (entry === null || entry.operation !== "PUT") return 0;
  try {
    const record = JSON.parse(decoder.decode(entry.value)) as Partial<FloorRecord>;
    return typeof record.floor === "number" ? record.floor : 0;
  } catch {
    return 0;
  }
}

/**
 * Room state on NATS KV: bucket `ARQON_STATE`, one KV key per room holding the room's whole map (tombstones
 * included, so versions keep counting across deletes) plus the write that produced it. A write is a compare-and-set
 * on the KV key's revision (`Nats-Expected-Last-Subject-Sequence`): concurrent writers on any node serialize, and a
 * `ifVersion` check is evaluated against the map the write replaces. The bucket keeps `maxLogEntries` revisions per
 * key, which is the log `at()` reads; watchers follow the bucket with a KV watch (stream order = applied order).
 * Meant for small maps ("what is the mode?"): every write stores the whole map of its room.
 * `deleteTenant` purges the tenant's room keys and keeps one record per deleted tenant (`tenant/floor.<tenant>`,
 * a key no room maps to) with the highest key version its rooms reached; new rooms of the tenant continue from it.
 */
export class NatsKvRoomStateStore implements RoomStateStore {
  readonly #link: NatsLink;
  readonly #kv: KV;
  readonly #stream: string;
  readonly #subjectPrefix: string;
  #watchers: readonly ((key: RoomKey, entry: StateEntry) => void)[] = [];
  readonly #onHandlerError: HandlerErrorReporter;
  #iter?: QueuedIterator<KvWatchEntry>;
  #closed = false;

  private constructor(link: NatsLink, kv: KV, bucket: string, onHandlerError: HandlerErrorReporter | undefined) {
    this.#link = link;
    this.#kv = kv;
    this.#stream = `KV_${bucket}`;
    this.#subjectPrefix = `$KV.${bucket}.`;
    this.#onHandlerError =
      onHandlerError ??
      ((error) =>
        queueMicrotask(() => {
          throw error;
        }));
  }

  /** Opens (creating if needed) the bucket and starts following it for watchers. */
  static async create(options: NatsKvRoomStateOptions): Promise<NatsKvRoomStateStore> {
    const { link } = options;
    const bucket = options.bucket ?? DEFAULT_STATE_BUCKET;
    try {
      const kv = await link.kvm.create(bucket, { history: options.maxLogEntries ?? 1000, replicas: options.replicas ?? 1 });
      const store = new NatsKvRoomStateStore(link, kv, bucket, options.onHandlerError);
      await store.#follow();
      return store;
    } catch (error) {
      throw link.fail("room state store", error);
    }
  }

  async #follow(): Promise<void> {
    const iter = await this.#kv.watch({ key: ">", include: KvWatchInclude.UpdatesOnly });
    this.#iter = iter;
    void (async () => {
      for await (const e of iter) {
        if (e.operation !== "PUT") continue;
        const s = parseSnapshot(e.value);
        if (s === undefined) continue;
        const key = roomKeyOfKv(e.key);
        const entry = fromWire(s.last);
        const watchers = this.#watchers;
        for (let i = 0; i < watchers.length; i++) {
          try {
            watchers[i]!(key, entry);
          } catch (error) {
            this.#onHandlerError(error);
          }
        }
      }
    })();
  }

  #guard(): void {
    if (this.#closed) throw new BackendUnavailableError("room state store is closed");
    this.#link.guard("room state");
  }

  /** The live entries of room `key`'s map, sorted by key; empty for a room never written. */
  async get(key: RoomKey): Promise<StateEntry[]> {
    this.#guard();
    const kvKey = roomKvKey(key);
    try {
      return live(snapshotOf(await this.#kv.get(kvKey)));
    } catch (error) {
      throw this.#link.fail("room state get", error);
    }
  }

  /**
   * Applies one write (a value, or `deleted`) to room `key` and resolves with the entry as stored: one version above
   * the key's last (deletes count, and so does a deleted tenant's floor). With `ifVersion` it is a compare-and-set
   * that rejects with `StateConflictError` (ARQ_STATE_CONFLICT) unless the key is live at that version (0: absent).
   * Deleting an absent key changes nothing and resolves with its tombstone (or version 0). Rejects with
   * ARQ_STATE_KEY_INVALID for an empty key, `PayloadTooLargeError` when the room's whole map would exceed the NATS
   * server's `max_payload`, and `BackendUnavailableError` when NATS is unreachable or writers kept colliding.
   */
  async set(key: RoomKey, write: StateWrite): Promise<StateEntry> {
    this.#guard();
    const kvKey = roomKvKey(key);
    const name = write.key;
    if (typeof name !== "string" || name === "") {
      throw new ArqonError(ErrorCode.STATE_KEY_INVALID, "state key must be a non-empty string");
    }
    try {
      for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
        const current = await this.#kv.get(kvKey);
        const snapshot = snapshotOf(current) ?? (await this.#emptySnapshot(kvKey));
        const index = snapshot.entries.findIndex((w) => w.k === name);
        const existing = index >= 0 ? snapshot.entries[index] : undefined;
        const version = existing?.n ?? snapshot.f ?? 0;
        const exists = existing !== undefined && !existing.d;
        if (write.ifVersion !== undefined) {
          const ok = write.ifVersion === 0 ? !exists : exists && write.ifVersion === version;
          if (!ok) throw new StateConflictError(name, write.ifVersion, exists ? version : 0);
        }
        if (write.deleted && !exists) return existing ? fromWire(existing) : { key: name, version: 0, deleted: true };
        const entry: StateEntry = { key: name, version: version + 1, updatedAt: Math.max(Date.now(), snapshot.last.t) };
        if (write.deleted) entry.deleted = true;
        else entry.value = write.value === undefined ? new Uint8Array(0) : write.value.slice();
        if (write.updatedBy !== undefined && write.updatedBy !== "") entry.updatedBy = write.updatedBy;
        const wire = toWire(entry);
        const entries = snapshot.entries.slice();
        if (index >= 0) entries[index] = wire;
        else entries.push(wire);
        const next: Snapshot = { rev: snapshot.rev + 1, last: wire, entries };
        if (snapshot.f !== undefined) next.f = snapshot.f;
        const data = encoder.encode(JSON.stringify(next));
        this.#link.checkSize(data.length);
        try {
          await this.#kv.put(kvKey, data, { previousSeq: current?.revision ?? 0 });
          return entry;
        } catch (error) {
          if (!isWrongLastSequence(error)) throw error;
        }
      }
      throw new BackendUnavailableError(`room state write to ${key}: too much contention (${MAX_ATTEMPTS} attempts)`);
    } catch (error) {
      throw this.#link.fail("room state set", error);
    }
  }

  /** The state of a room with no map yet: empty, continuing from its tenant's floor. */
  async #emptySnapshot(kvKey: string): Promise<Snapshot> {
    const snapshot: Snapshot = { rev: 0, last: { k: "", n: 0, t: 0 }, entries: [] };
    const floor = floorOf(await this.#kv.get(floorKey(kvKey.slice(0, kvKey.indexOf(".")))));
    if (floor > 0) snapshot.f = floor;
    return snapshot;
  }

  async deleteTenant(tenant: string): Promise<number> {
    this.#guard();
    if (typeof tenant !== "string") {
      throw new ArqonError(ErrorCode.VALIDATION_ERROR, "tenant must be a string", { detail: { field: "tenant" } });
    }
    const token = kvToken(tenant);
    try {
      const keys: string[] = [];
      for await (const k of await this.#kv.keys(`${token}.*`)) keys.push(k);
      let removed = 0;
      for (let i = 0; i < keys.length; i += 16) {
        const done = await Promise.all(keys.slice(i, i + 16).map((k) => this.#purgeRoom(token, k)));
        removed += done.filter(Boolean).length;
      }
      return removed;
    } catch (error) {
      throw this.#link.fail("room state delete tenant", error);
    }
  }

  /**
   * Purges one room's key, after raising the tenant's floor to the room's highest version; the purge expects the
   * map it read, so a write that lands in between is seen (and covered by the floor) before the room goes.
   */
  async #purgeRoom(token: string, kvKey: string): Promise<boolean> {
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const current = await this.#kv.get(kvKey);
      const snapshot = snapshotOf(current);
      if (current === null || snapshot === undefined) return false;
      let highest = snapshot.f ?? 0;
      for (const w of snapshot.entries) highest = Math.max(highest, w.n);
      await this.#raiseFloor(token, highest);
      try {
        await this.#kv.purge(kvKey, { previousSeq: current.revision });
        return true;
      } catch (error) {
        if (!isWrongLastSequence(error)) throw error;
      }
    }
    throw new BackendUnavailableError(`room state delete of ${kvKey}: too much contention (${MAX_ATTEMPTS} attempts)`);
  }

  async #raiseFloor(token: string, floor: number): Promise<void> {
    const key = floorKey(token);
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const current = await this.#kv.get(key);
      if (floorOf(current) >= floor) return;
      const record: FloorRecord = { floor };
      try {
        await this.#kv.put(key, encoder.encode(JSON.stringify(record)), { previousSeq: current?.revision ?? 0 });
        return;
      } catch (error) {
        if (!isWrongLastSequence(error)) throw error;
      }
    }
    throw new BackendUnavailableError(`room state floor of ${token}: too much contention (${MAX_ATTEMPTS} attempts)`);
  }

  /**
   * Room `key`'s live entries as they were right after its `revision`-th write (0: before any), or after its last
   * write at or before `timestamp` (epoch ms). Rejects with ARQ_HISTORY_UNAVAILABLE when that point is older than the
   * kept log (`maxLogEntries` writes), and with ARQ_POSITION_INVALID for a negative or fractional revision or a
   * timestamp that is not a number.
   */
  async at(key: RoomKey, point: StatePoint): Promise<StateEntry[]> {
    this.#guard();
    const kvKey = roomKvKey(key);
    const byRevision = "revision" in point;
    if (byRevision) {
      if (!Number.isSafeInteger(point.revision) || point.revision < 0) {
        throw new ArqonError(ErrorCode.POSITION_INVALID, "state revision must be a non-negative integer", {
          detail: { revision: point.revision },
        });
      }
    } else if (typeof point.timestamp !== "number" || Number.isNaN(point.timestamp)) {
      throw new ArqonError(ErrorCode.POSITION_INVALID, "state timestamp must be a number", {
        detail: { timestamp: point.timestamp },
      });
    }
    try {
      const current = snapshotOf(await this.#kv.get(kvKey));
      if (current === undefined) return [];
      if (byRevision && point.revision >= current.rev) return live(current);
      if (byRevision && point.revision === 0) return [];
      if (!byRevision && point.timestamp >= current.last.t) return live(current);
      const records = await scanSubject(this.#link, this.#stream, this.#subjectPrefix + kvKey);
      const log = records.flatMap((r) => {
        const s = parseSnapshot(r.data);
        return s === undefined ? [] : [s];
      });
      const oldest = log[0];
      let found: Snapshot | undefined;
      for (const s of log) {
        if (byRevision ? s.rev <= point.revision : s.last.t <= point.timestamp) found = s;
        else break;
      }
      const complete = oldest !== undefined && oldest.rev === 1;
      if (found === undefined && complete) return [];
      if (found === undefined || (byRevision && found.rev !== point.revision)) {
        throw new ArqonError(ErrorCode.HISTORY_UNAVAILABLE, `state before revision ${oldest?.rev ?? current.rev} is no longer kept`, {
          detail: { oldestRevision: oldest?.rev ?? current.rev },
        });
      }
      return live(found);
    } catch (error) {
      throw this.#link.fail("room state at", error);
    }
  }

  /**
   * Calls `handler` with every write applied from now on to any room, by any node, in the order they were applied;
   * returns a function that removes it. Tenant deletes are not reported. What it throws goes to `onHandlerError`.
   */
  watch(handler: (key: RoomKey, entry: StateEntry) => void): Unsubscribe {
    this.#watchers = [...this.#watchers, handler];
    return () => {
      this.#watchers = this.#watchers.filter((w) => w !== handler);
    };
  }

  /**
   * Stops following the bucket and drops the watchers; later calls reject with `BackendUnavailableError`.
   * Idempotent; the bucket and the NatsLink are left as they are.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#watchers = [];
    this.#iter?.stop();
  }
}
